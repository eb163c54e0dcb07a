package tui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/themes"
)

// press turns a key name into a key press: "a", "!", "enter", "esc",
// "space", "tab", "up", "down", "left", "right", "backspace".
func press(k string) tea.KeyPressMsg {
	special := map[string]rune{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "space": tea.KeySpace, "tab": tea.KeyTab,
		"up": tea.KeyUp, "down": tea.KeyDown, "left": tea.KeyLeft, "right": tea.KeyRight, "backspace": tea.KeyBackspace,
		"pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp}
	if r, ok := map[string]rune{"shift+up": tea.KeyUp, "shift+down": tea.KeyDown}[k]; ok {
		return tea.KeyPressMsg{Code: r, Mod: tea.ModShift}
	}
	if r, ok := special[k]; ok {
		m := tea.KeyPressMsg{Code: r}
		if k == "space" {
			m.Text = " "
		}
		return m
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// driver drives a Model without a Program: each message's command runs at
// once and its messages are fed back, so a test sees the end state of a
// keypress. Commands that wait (ticks, the event stream) are not started.
type driver struct {
	t *testing.T
	m *Model
}

func newSync(t *testing.T, b Backend, opts Options, w, h int) *driver {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	if opts.Theme == nil {
		opts.Theme = themes.Default(true)
	}
	if opts.Session == nil && opts.SignIn == nil {
		opts.Session = &Session{Operator: priya, Expires: fixedNow.Add(42 * time.Minute)}
	}
	opts.Context = context.Background()
	s := &driver{t: t, m: New(b, opts)}
	s.send(tea.WindowSizeMsg{Width: w, Height: h})
	ctx := context.Background()
	s.send(loadSnapshot(ctx, b, time.Hour)())
	s.send(loadAudit(ctx, b, 0)())
	s.send(verifyAudit(ctx, b, opts.Now)())
	return s
}

// send delivers a message and runs what it starts.
func (s *driver) send(msg tea.Msg) {
	s.t.Helper()
	queue := []tea.Msg{msg}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if b, ok := m.(tea.BatchMsg); ok {
			for _, c := range b {
				queue = append(queue, s.run(c)...)
			}
			continue
		}
		_, cmd := s.m.Update(m)
		queue = append(queue, s.run(cmd)...)
	}
}

// run runs a command unless it is one that waits.
func (s *driver) run(c tea.Cmd) []tea.Msg {
	if c == nil {
		return nil
	}
	msg := c()
	switch msg.(type) {
	case nil, tickMsg, subscribedMsg, tea.RawMsg:
		return nil
	}
	return []tea.Msg{msg}
}

// keys presses each key in turn.
func (s *driver) keys(ks ...string) {
	s.t.Helper()
	for _, k := range ks {
		s.send(press(k))
	}
}

// screen is the rendered view without styling.
func (s *driver) screen() string { return ansi.Strip(s.m.render()) }

func (s *driver) mustShow(want ...string) {
	s.t.Helper()
	scr := s.screen()
	for _, w := range want {
		if !strings.Contains(scr, w) {
			s.t.Fatalf("screen lacks %q:\n%s", w, scr)
		}
	}
}
