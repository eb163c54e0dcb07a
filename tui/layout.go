package tui

import "strings"

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
	listBlock := lines(list, l.listW, l.listH)
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
	det := lines(indent(detail), l.w, l.detH)
	return listBlock + "\n" + rule + "\n" + det
}

func indent(ls []string) []string {
	out := make([]string, len(ls))
	for i, s := range ls {
		out[i] = " " + s
	}
	return out
}
