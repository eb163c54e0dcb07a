package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// wideLayout is the width from which the detail pane sits beside the list.
const wideLayout = 120

// paneLayout is where a page's list and detail pane go.
type paneLayout struct {
	w, h         int
	wide         bool
	listW, listH int // the list's size, including its column header
	detW, detH   int
}

func layoutFor(w, h int) paneLayout {
	l := paneLayout{w: w, h: h, wide: w >= wideLayout}
	if l.wide {
		// The list gets the larger share: its intent column is what an
		// operator scans; the pane shows the selected request in full.
		l.listW = w * 3 / 5
		l.detW = w - l.listW - 3
		l.listH, l.detH = h, h
	} else {
		l.listW, l.detW = w, w-2
		l.listH = max((h-1)/2, 3)
		l.detH = h - l.listH - 1
	}
	return l
}

// shrink gives a stacked list only the lines it needs (n of them), so a
// short queue leaves the detail pane room.
func (l paneLayout) shrink(n int) paneLayout {
	if l.wide || n >= l.listH {
		return l
	}
	n = max(n, 3)
	l.detH += l.listH - n
	l.listH = n
	return l
}

// rows is how many list rows fit under the list's column header (and the
// filter line, when there is one).
func (l paneLayout) rows(extra int) int { return max(l.listH-1-extra, 1) }

// join draws the list and the detail pane: beside at ≥120 columns with a
// rule between, stacked with a titled rule otherwise.
func (l paneLayout) join(a *app, list, detail []string, detailTitle string) string {
	return l.joinAt(a, list, detail, detailTitle, 0)
}

// joinAt is join with the detail pane scrolled down by scroll lines.
func (l paneLayout) joinAt(a *app, list, detail []string, detailTitle string, scroll int) string {
	listBlock := lines(list, l.listW, l.listH)
	detail = l.pane(a, detail, scroll)
	if l.wide {
		left := strings.Split(listBlock, "\n")
		right := strings.Split(lines(detail, l.detW, l.detH), "\n")
		sep := a.th.Muted.Render(" │ ")
		var b strings.Builder
		for i := range l.h {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(left[i])
			b.WriteString(sep)
			b.WriteString(right[i])
		}
		return b.String()
	}
	title := "─ " + detailTitle + " "
	rule := a.th.Muted.Render(title + strings.Repeat("─", max(l.w-displayWidth(title), 0)))
	det := lines(detail, l.w, l.detH)
	return listBlock + "\n" + rule + "\n" + det
}

// paneSize is the width and height detail lines are drawn in.
func (l paneLayout) paneSize() (w, h int) {
	if l.wide {
		return l.detW, l.detH
	}
	return l.w - 1, l.detH // stacked: indented by one column
}

// wrapped is the detail pane's lines at its width: a line too long
// continues on the next with a hanging indent; nothing is cut, so no text
// is lost or shown twice.
func (l paneLayout) wrapped(detail []string) []string {
	w, _ := l.paneSize()
	if w <= 4 {
		return detail
	}
	out := make([]string, 0, len(detail))
	for _, line := range detail {
		if displayWidth(line) <= w {
			out = append(out, line)
			continue
		}
		plain := ansi.Strip(line)
		hang := min(len(plain)-len(strings.TrimLeft(plain, " "))+2, w/3)
		parts := strings.Split(ansi.Wrap(line, w-hang, " /-_"), "\n")
		out = append(out, parts[0])
		for _, part := range parts[1:] {
			out = append(out, strings.Repeat(" ", hang)+strings.TrimLeft(part, " "))
		}
	}
	return out
}

// maxScroll is how far the detail pane can scroll: its last line at the
// bottom, under the line saying what is above.
func (l paneLayout) maxScroll(detail []string) int {
	_, h := l.paneSize()
	return max(len(l.wrapped(detail))-(h-1), 0)
}

// pane is the detail pane's visible lines scrolled down by scroll, with a
// line saying how much is above or below and which keys scroll.
func (l paneLayout) pane(a *app, detail []string, scroll int) []string {
	w, h := l.paneSize()
	all := l.wrapped(detail)
	if len(all) <= h || h < 3 {
		if !l.wide {
			return indent(all)
		}
		return all
	}
	off := min(max(scroll, 0), l.maxScroll(detail))
	var out []string
	body := h
	if off > 0 {
		body--
	}
	more := len(all) - off - body
	if more > 0 {
		body--
		more++
	}
	if off > 0 {
		out = append(out, a.th.Muted.Render(fit(fmt.Sprintf("↑ %s above · shift+↑ scrolls", plural(off, "line")), w)))
	}
	out = append(out, all[off:off+body]...)
	if more > 0 {
		out = append(out, a.th.Muted.Render(fit(fmt.Sprintf("↓ %s below · shift+↓ scrolls", plural(more, "line")), w)))
	}
	if !l.wide {
		return indent(out)
	}
	return out
}

// paneScroll is how far a page's detail pane is scrolled, for the item
// it shows; selecting another item starts it at the top.
type paneScroll struct {
	off int
	of  string // the item's id
}

// at is the scroll for the item id.
func (s *paneScroll) at(id string) int {
	if s.of != id {
		return 0
	}
	return s.off
}

// onKey scrolls for shift+↑/↓, reporting whether it used the key.
func (s *paneScroll) onKey(msg tea.KeyPressMsg, k keyMap, id string, maxOff int) bool {
	if s.of != id {
		s.of, s.off = id, 0
	}
	switch {
	case key.Matches(msg, k.ScrollUp):
		s.off = max(min(s.off, maxOff)-3, 0)
	case key.Matches(msg, k.ScrollDown):
		s.off = min(s.off+3, maxOff)
	default:
		return false
	}
	return true
}

func indent(ls []string) []string {
	out := make([]string, len(ls))
	for i, s := range ls {
		out[i] = " " + s
	}
	return out
}
