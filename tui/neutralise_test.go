package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker/visible"
)

func TestNeutralise(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "open PR fixing CVE-2026-1234", "open PR fixing CVE-2026-1234"},
		{"unicode kept", "déployer café → prod", "déployer café → prod"},
		{"colour escape shown", "\x1b[31mred\x1b[0m", "␛[31mred␛[0m"},
		{"title set shown", "\x1b]0;pwned\x07", "␛]0;pwned␇"},
		{"osc 52 clipboard", "\x1b]52;c;ZXZpbA==\x1b\\", "␛]52;c;ZXZpbA==␛\\"},
		{"bell", "ding\a", "ding␇"},
		{"newline to space", "line one\nline two", "line one line two"},
		{"tab to space", "a\tb", "a b"},
		{"carriage return", "safe\rEVIL", "safe EVIL"},
		{"backspace", "rm\b\b", "rm␈␈"},
		{"del", "x\x7f", "x␡"},
		{"c1 csi", "a\u009b31mb", `a\u009b31mb`},
		{"c1 osc", "\u009d0;t\u009c", `\u009d0;t\u009c`},
		{"bidi override", "read \u202Eelif\u202C", "read <U+202E>elif<U+202C>"},
		{"bidi isolate", "\u2066x\u2069", "<U+2066>x<U+2069>"},
		{"zero width", "ad\u200Bmin", "ad<U+200B>min"},
		{"bom", "\uFEFFhi", "<U+FEFF>hi"},
		{"tag chars", "a\U000E0041", "a<U+E0041>"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"nul", "a\x00b", "a␀b"},
		// Issue 10, item 5: each of these rendered invisibly.
		{"line separator", "read\u2028APPROVE ME", "read<U+2028>APPROVE ME"},
		{"paragraph separator", "read\u2029APPROVE ME", "read<U+2029>APPROVE ME"},
		{"soft hyphen", "ad\u00ADmin", "ad<U+00AD>min"},
		{"combining grapheme joiner", "a\u034Fb", "a<U+034F>b"},
		{"hangul choseong filler", "a\u115Fb", "a<U+115F>b"},
		{"hangul jungseong filler", "a\u1160b", "a<U+1160>b"},
		{"hangul filler", "a\u3164b", "a<U+3164>b"},
		{"halfwidth hangul filler", "a\uFFA0b", "a<U+FFA0>b"},
		{"mongolian vowel separator", "a\u180Eb", "a<U+180E>b"},
		{"invisible times", "a\u2062b", "a<U+2062>b"},
		{"variation selector 16", "ok\uFE0F", "ok<U+FE0F>"},
		{"variation selector supplement", "ok\U000E0100", "ok<U+E0100>"},
		{"c1 next line", "a\u0085b", `a\u0085b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Neutralise(tt.in)
			if got != tt.want {
				t.Errorf("Neutralise(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.ContainsAny(got, "\x1b\a\r\n\t\b\x00\x7f") {
				t.Errorf("Neutralise(%q) = %q still holds a control", tt.in, got)
			}
			if ansi.Strip(got) != got {
				t.Errorf("Neutralise(%q) = %q still holds an escape sequence", tt.in, got)
			}
		})
	}
}

func TestNeutraliseLinesKeepsNewlines(t *testing.T) {
	got := NeutraliseLines("one\ntwo\r\nthree\x1b[2J")
	want := "one\ntwo␍\nthree␛[2J"
	if got != want {
		t.Errorf("NeutraliseLines = %q, want %q", got, want)
	}
}

func FuzzNeutralise(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m", "\u009b", "\u202e", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Neutralise(s)
		for _, r := range got {
			if r < 0x20 || r == 0x7F || visible.Hidden(r) {
				t.Fatalf("Neutralise(%q) = %q holds control %U", s, got, r)
			}
		}
	})
}

func BenchmarkNeutralisePlain(b *testing.B) {
	s := "open a pull request fixing CVE-2026-1234 in acme/web"
	for b.Loop() {
		_ = Neutralise(s)
	}
}
