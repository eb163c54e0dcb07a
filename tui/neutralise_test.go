package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
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
			if r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0x9F) || invisible(r) {
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
