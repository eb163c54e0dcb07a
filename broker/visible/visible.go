// Package visible is writ's one rule for characters that change what
// text reads as without being seen. The console shows each as a marker;
// text exports write each as an escape. Agents write intents, so an intent
// must never read differently on the operator's screen, or in an exported
// record, from what it says.
package visible

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Hidden reports whether r draws nothing, or changes how the text around
// it draws, without being seen:
//   - C1 controls (U+0080–U+009F), which some terminals obey like ESC;
//   - every format character (Unicode category Cf: bidi embeddings,
//     overrides, isolates and marks, zero-width spaces and joiners, the
//     soft hyphen U+00AD, U+180E, invisible operators such as U+2062, the
//     BOM, the tag characters);
//   - the line and paragraph separators U+2028 and U+2029 (Zl, Zp), which
//     some renderers break lines at and others drop;
//   - the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, which render
//     as blank but count as letters;
//   - variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF, Mongolian
//     U+180B–U+180F), the combining grapheme joiner U+034F, and the other
//     default-ignorable code points (U+17B4, U+17B5, U+FFF0–U+FFF8,
//     U+1BCA0–U+1BCA3, U+1D173–U+1D17A, unassigned U+E0000–U+E0FFF).
//
// C0 controls and DEL are not included: callers handle them (the console
// shows control pictures, JSON escapes them already).
func Hidden(r rune) bool {
	switch {
	case r < 0x80:
		return false
	case r <= 0x9F:
		return true
	case r == 0x034F, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5,
		r >= 0x180B && r <= 0x180F, r == 0x3164, r == 0xFFA0,
		r >= 0xFE00 && r <= 0xFE0F, r >= 0xFFF0 && r <= 0xFFF8,
		r >= 0x1BCA0 && r <= 0x1BCA3, r >= 0x1D173 && r <= 0x1D17A,
		r >= 0xE0000 && r <= 0xE0FFF:
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// EscapeJSON rewrites every Hidden character in JSON text b as a \uXXXX
// escape (a surrogate pair beyond the BMP). The JSON means exactly what it
// meant; only its bytes change, so a terminal or editor showing the file
// shows each such character as an escape. Such characters can only occur
// inside JSON strings, where an escape is always allowed.
func EscapeJSON(b []byte) []byte {
	clean := true
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if Hidden(r) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case !Hidden(r):
			out = append(out, b[i:i+size]...)
		case r > 0xFFFF:
			r -= 0x10000
			out = appendU(appendU(out, 0xD800+(r>>10)), 0xDC00+(r&0x3FF))
		default:
			out = appendU(out, r)
		}
		i += size
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	b = append(b, `\u`...)
	h := strconv.FormatInt(int64(r), 16)
	for range 4 - len(h) {
		b = append(b, '0')
	}
	return append(b, h...)
}
