package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker"
)

// ago renders how long ago t was: "12s", "4m", "3h", "2d".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return short(now.Sub(t))
}

// short renders a duration compactly, rounding down: "45s", "12m", "3h".
func short(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// countdown renders time left as "14:59" or "1:02:03"; "0:00" when past.
func countdown(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// ttl renders a grant lifetime: "15m", "1h", "1h30m", "90s".
func ttl(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d > time.Hour && d%time.Minute == 0:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return d.Round(time.Second).String()
}

// fit truncates s to w cells with an ellipsis and pads it to exactly w.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	s = ansi.Truncate(s, w, "…")
	if pad := w - ansi.StringWidth(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// trunc truncates s to w cells with an ellipsis, without padding.
func trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

// padRight pads a rendered (possibly styled) line to w cells.
func padRight(s string, w int) string {
	if pad := w - ansi.StringWidth(s); pad > 0 {
		return s + strings.Repeat(" ", pad)
	}
	return s
}

// wrap soft-wraps plain text to w cells.
func wrap(s string, w int) []string {
	if w <= 0 {
		return nil
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		out = append(out, strings.Split(ansi.Wrap(para, w, " /-_."), "\n")...)
	}
	return out
}

// shortID shortens an id writ made for display, as the broker does: its
// random end, since its start is the time (alike for ids made together).
func shortID(id string) string { return broker.ShortID(id) }

// shortHash shortens a hash or key thumbprint for display: its start.
func shortHash(h string) string {
	if len(h) > 10 {
		return h[:10] + "…"
	}
	return h
}

// plural renders "1 grant", "3 grants".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// lines pads or cuts a block to exactly h lines of width w.
func lines(block []string, w, h int) string {
	var b strings.Builder
	for i := 0; i < h; i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < len(block) {
			l := block[i]
			if ansi.StringWidth(l) > w {
				l = ansi.Truncate(l, w, "…")
			}
			b.WriteString(padRight(l, w))
		} else {
			b.WriteString(strings.Repeat(" ", w))
		}
	}
	return b.String()
}

// col is a table cell: s fitted to w-1 cells and a space.
func col(s string, w int) string {
	if w <= 1 {
		return fit(s, w)
	}
	return fit(s, w-1) + " "
}
