package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker/visible"
)

// lineEdit is a one-line text field with the cursor at its end: enough for
// a filter or a reason, with no blinking cursor to tick the screen.
type lineEdit struct {
	value []rune
	limit int
}

// update handles a key, reporting whether the field used it.
func (e *lineEdit) update(msg tea.KeyPressMsg) bool {
	switch msg.String() {
	case "backspace", "ctrl+h":
		if len(e.value) > 0 {
			e.value = e.value[:len(e.value)-1]
		}
		return true
	case "ctrl+u":
		e.value = e.value[:0]
		return true
	case "ctrl+w":
		s := strings.TrimRight(string(e.value), " ")
		if i := strings.LastIndexByte(s, ' '); i >= 0 {
			e.value = []rune(s[:i+1])
		} else {
			e.value = e.value[:0]
		}
		return true
	}
	if msg.Text == "" || msg.Mod&(tea.ModCtrl|tea.ModAlt) != 0 {
		return false
	}
	for _, r := range msg.Text {
		if r < 0x20 || r == 0x7F || visible.Hidden(r) {
			continue // typed or pasted controls never reach a reason or a filter
		}
		if e.limit > 0 && len(e.value) >= e.limit {
			break
		}
		e.value = append(e.value, r)
	}
	return true
}

// editFilter handles a key while a page's filter is being typed: esc
// clears it and stops, enter keeps it and stops, any other key edits. It
// reports whether editing goes on.
func (e *lineEdit) editFilter(msg tea.KeyPressMsg) bool {
	switch msg.String() {
	case "esc":
		e.set("")
		return false
	case "enter":
		return false
	}
	e.update(msg)
	return true
}

func (e *lineEdit) String() string { return string(e.value) }

func (e *lineEdit) set(s string) { e.value = []rune(s) }

// view renders the field with a block cursor, cut to the last w cells.
func (e *lineEdit) view(w int) string {
	s := string(e.value)
	if w > 1 {
		rs := e.value
		for len(rs) > 0 && len(string(rs)) > 0 && displayWidth(string(rs)) > w-1 {
			rs = rs[1:]
		}
		s = string(rs)
	}
	return s + "█"
}
