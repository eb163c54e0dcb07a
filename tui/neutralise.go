package tui

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/writhq/writ/broker/visible"
)

// Neutralise makes text that an agent or an operator supplied safe to draw
// on the operator's terminal. Nothing in it can move the cursor, change
// colours, set the window title, ring the bell or reorder what is shown:
//
//   - C0 controls and DEL become their visible Unicode control pictures
//     (ESC shows as ␛), so an injected escape sequence is seen, not obeyed;
//   - C1 controls (U+0080–U+009F, which some terminals obey like ESC
//     sequences) become a visible \u009b-style escape;
//   - every other character broker/visible calls Hidden (format
//     characters such as bidirectional overrides, the Trojan Source trick,
//     zero-width characters and the soft hyphen; line and paragraph
//     separators; Hangul fillers; variation selectors; the combining
//     grapheme joiner) becomes a visible <U+2028> marker;
//   - invalid UTF-8 becomes U+FFFD.
//
// Newlines and tabs are kept as spaces, since every place the console shows
// such text is a run of single lines: NeutraliseLines keeps line breaks.
func Neutralise(s string) string {
	return neutralise(s, false)
}

// NeutraliseLines is Neutralise keeping line breaks, for text shown in
// full (an intent in the detail pane).
func NeutraliseLines(s string) string {
	return neutralise(s, true)
}

func neutralise(s string, keepNewlines bool) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune('\uFFFD')
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
		case r == '\n' || r == '\t' || r == '\r' && !keepNewlines:
			b.WriteByte(' ')
		case r == '\r':
			// A bare CR would let later text overwrite earlier text.
			b.WriteRune('\u240D')
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7F:
			b.WriteRune('\u2421')
		case r >= 0x80 && r <= 0x9F:
			fmt.Fprintf(&b, `\u%04x`, r)
		case visible.Hidden(r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isPlain reports whether s is printable ASCII, the common case, which
// needs no copy.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7F {
			return false
		}
	}
	return true
}
