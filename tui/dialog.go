package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// dialog is a modal on top of the page. Dialogs get keys first; a
// destructive one defaults to the safe choice.
type dialog interface {
	// update handles a key and reports whether the dialog is finished.
	update(a *app, msg tea.KeyPressMsg) (done bool, cmd tea.Cmd)
	// view renders the dialog's body for a width.
	view(a *app, width int) string
	// help lists the dialog's keys.
	help(a *app) []key.Binding
	// closes reports whether a request or grant closing elsewhere makes the
	// dialog moot, with the message to show.
	closes(requestID string) bool
}

// wantsText is implemented by dialogs with a focused text field: `!` and
// the other global keys type into it instead.
type wantsText interface{ typing() bool }

// dialogWidth is the width a dialog's body has inside the frame on a
// screen w wide: a body line no wider is never wrapped by the frame.
func dialogWidth(w int) int { return min(w-4, 76) - 2 }

// wrapHang wraps s (plain text) to w cells, continuing each cut on a new
// line indented by hang spaces: nothing is cut off and nothing repeats.
func wrapHang(s string, w, hang int) []string {
	if w <= hang+4 {
		return []string{trunc(s, w)}
	}
	parts := wrap(s, w-hang)
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.Repeat(" ", hang) + strings.TrimLeft(parts[i], " ")
	}
	return parts
}

// frame draws a dialog body in the theme's dialog frame, at most w wide.
func frame(a *app, title, body string, w int) string {
	inner := min(w-4, 76)
	var b strings.Builder
	b.WriteString(a.th.Title.Render(title))
	b.WriteString("\n")
	b.WriteString(body)
	return a.th.Dialog.Width(inner + 2).Render(b.String())
}

// confirmDialog asks yes or no; no is the default and any other key is no.
type confirmDialog struct {
	title, body string
	yes         string // what y does, for the help bar
	onYes       func(a *app) tea.Cmd
	requestID   string
}

func (c *confirmDialog) update(a *app, msg tea.KeyPressMsg) (bool, tea.Cmd) {
	if msg.String() == "y" || msg.String() == "Y" {
		return true, c.onYes(a)
	}
	return true, nil
}

func (c *confirmDialog) view(a *app, w int) string {
	body := c.body + "\n\n" + a.th.Strong.Render("y") + " " + c.yes + "   " +
		a.th.Strong.Render("any other key") + " cancel (default)"
	return frame(a, c.title, body, w)
}

func (c *confirmDialog) help(a *app) []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("y"), key.WithHelp("y", c.yes)), a.keys.Cancel}
}

func (c *confirmDialog) closes(id string) bool { return c.requestID != "" && c.requestID == id }

// reasonDialog asks for a reason, typed or picked from presets, then acts.
// It is used for deny, revoke, revoke-agent and quarantine.
type reasonDialog struct {
	title, body string
	action      string // the verb on enter: "deny", "revoke"
	presets     []string
	preset      int
	edit        lineEdit
	requestID   string
	onReason    func(a *app, reason string) tea.Cmd
}

func newReasonDialog(title, body, action string, presets []string, onReason func(*app, string) tea.Cmd) *reasonDialog {
	return &reasonDialog{title: title, body: body, action: action, presets: presets, edit: lineEdit{limit: 200}, onReason: onReason}
}

func (r *reasonDialog) typing() bool { return true }

func (r *reasonDialog) reason() string {
	if s := strings.TrimSpace(r.edit.String()); s != "" {
		return s
	}
	if r.preset >= 0 && r.preset < len(r.presets) {
		return r.presets[r.preset]
	}
	return ""
}

func (r *reasonDialog) update(a *app, msg tea.KeyPressMsg) (bool, tea.Cmd) {
	switch msg.String() {
	case "esc":
		return true, nil
	case "enter":
		reason := r.reason()
		if reason == "" {
			a.fail("a reason is needed: type one or pick a preset")
			return false, nil
		}
		return true, r.onReason(a, reason)
	case "up", "ctrl+p":
		r.preset = max(r.preset-1, 0)
		return false, nil
	case "down", "ctrl+n", "tab":
		r.preset = min(r.preset+1, len(r.presets)-1)
		return false, nil
	}
	r.edit.update(msg)
	return false, nil
}

func (r *reasonDialog) view(a *app, w int) string {
	var b strings.Builder
	if r.body != "" {
		b.WriteString(r.body)
		b.WriteString("\n\n")
	}
	b.WriteString("Reason: ")
	b.WriteString(a.th.Strong.Render(r.edit.view(min(w-16, 60))))
	b.WriteString("\n")
	if len(r.presets) > 0 {
		b.WriteString(a.th.Muted.Render("or a preset (↑/↓), used when nothing is typed:"))
		for i, p := range r.presets {
			b.WriteString("\n")
			line := "  " + p
			if i == r.preset {
				line = a.th.Selected.Render("▸ " + p)
			}
			b.WriteString(line)
		}
	}
	b.WriteString("\n\n" + a.th.Strong.Render("enter") + " " + r.action + "   " + a.th.Strong.Render("esc") + " cancel")
	return frame(a, r.title, b.String(), w)
}

func (r *reasonDialog) help(a *app) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", r.action)),
		key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "preset")),
		a.keys.Cancel,
	}
}

func (r *reasonDialog) closes(id string) bool { return r.requestID != "" && r.requestID == id }
