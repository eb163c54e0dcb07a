package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// window is a cursor over n rows of which height are visible: the only
// rows a page ever renders, so a page of 100,000 grants costs what a page
// of 40 does.
type window struct {
	cursor, offset, height, n int
}

// setLen changes the number of rows, keeping the cursor in range.
func (w *window) setLen(n int) {
	w.n = n
	w.clamp()
}

// setHeight changes how many rows are visible.
func (w *window) setHeight(h int) {
	w.height = max(h, 1)
	w.clamp()
}

func (w *window) clamp() {
	w.cursor = min(max(w.cursor, 0), max(w.n-1, 0))
	if w.cursor < w.offset {
		w.offset = w.cursor
	}
	if w.cursor >= w.offset+w.height {
		w.offset = w.cursor - w.height + 1
	}
	w.offset = min(max(w.offset, 0), max(w.n-w.height, 0))
}

// move moves the cursor by delta rows.
func (w *window) move(delta int) {
	w.cursor += delta
	w.clamp()
}

// moveTo puts the cursor on row i.
func (w *window) moveTo(i int) {
	w.cursor = i
	w.clamp()
}

// visible returns the range of rows to render, [from, to).
func (w *window) visible() (from, to int) {
	return w.offset, min(w.offset+w.height, w.n)
}

// navigate handles the movement keys, reporting whether it used the key.
func (w *window) navigate(msg tea.KeyPressMsg, k keyMap) bool {
	switch {
	case key.Matches(msg, k.Up):
		w.move(-1)
	case key.Matches(msg, k.Down):
		w.move(1)
	case key.Matches(msg, k.PageUp):
		w.move(-w.height)
	case key.Matches(msg, k.PageDown):
		w.move(w.height)
	case key.Matches(msg, k.Top):
		w.moveTo(0)
	case key.Matches(msg, k.Bottom):
		w.moveTo(w.n - 1)
	default:
		return false
	}
	return true
}

// mouse handles a click on row y of the list (0 is the first visible row)
// and the wheel, reporting whether it used the event.
func (w *window) mouse(msg tea.MouseMsg, y int) bool {
	m := msg.Mouse()
	switch msg.(type) {
	case tea.MouseWheelMsg:
		switch m.Button {
		case tea.MouseWheelUp:
			w.move(-3)
		case tea.MouseWheelDown:
			w.move(3)
		default:
			return false
		}
		return true
	case tea.MouseClickMsg:
		if m.Button == tea.MouseLeft && y >= 0 && w.offset+y < w.n && y < w.height {
			w.moveTo(w.offset + y)
			return true
		}
	}
	return false
}
