package visible

import (
	"encoding/json"
	"fmt"
	"testing"
	"unicode/utf8"
)

// Every class issue 10 names, and its relatives.
var hiddenClasses = map[string][]rune{
	"C1 control":               {0x80, 0x85, 0x9B, 0x9F},
	"line/paragraph separator": {0x2028, 0x2029},
	"soft hyphen":              {0x00AD},
	"combining grapheme join":  {0x034F},
	"Hangul filler":            {0x115F, 0x1160, 0x3164, 0xFFA0},
	"Mongolian vowel sep.":     {0x180E},
	"invisible operator":       {0x2061, 0x2062, 0x2063, 0x2064},
	"variation selector":       {0xFE00, 0xFE0F, 0xE0100, 0xE01EF, 0x180B},
	"bidi":                     {0x202A, 0x202E, 0x2066, 0x2069, 0x200E, 0x200F, 0x061C},
	"zero width":               {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF},
	"tag":                      {0xE0001, 0xE0041, 0xE007F},
	"Khmer inherent vowel":     {0x17B4, 0x17B5},
}

func TestHidden(t *testing.T) {
	for class, rs := range hiddenClasses {
		for _, r := range rs {
			if !Hidden(r) {
				t.Errorf("%s U+%04X is not Hidden", class, r)
			}
		}
	}
	for _, r := range "aZ09 é日本語😀→─│£€\u00A0" {
		if Hidden(r) {
			t.Errorf("visible U+%04X is Hidden", r)
		}
	}
}

func TestEscapeJSON(t *testing.T) {
	for class, rs := range hiddenClasses {
		for _, r := range rs {
			in := fmt.Sprintf("read%cAPPROVE ME", r)
			raw, _ := json.Marshal(map[string]string{"intent": in})
			out := EscapeJSON(raw)
			for i := 0; i < len(out); {
				c, size := utf8.DecodeRune(out[i:])
				if Hidden(c) {
					t.Fatalf("%s U+%04X: escaped JSON still holds it: %s", class, r, out)
				}
				i += size
			}
			var back map[string]string
			if err := json.Unmarshal(out, &back); err != nil || back["intent"] != in {
				t.Fatalf("%s U+%04X: escaped JSON %s decodes to %q, %v", class, r, out, back["intent"], err)
			}
		}
	}
	plain := []byte(`{"a":"日本語 😀"}`)
	if got := EscapeJSON(plain); string(got) != string(plain) {
		t.Fatalf("visible text changed: %s", got)
	}
}

func FuzzEscapeJSON(f *testing.F) {
	f.Add("read\u2028APPROVE ME\u0085\U000E0041")
	f.Fuzz(func(t *testing.T, s string) {
		raw, _ := json.Marshal(s)
		out := EscapeJSON(raw)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("escaped %q is not JSON: %v", out, err)
		}
		var want string
		_ = json.Unmarshal(raw, &want)
		if back != want {
			t.Fatalf("escaping changed the value: %q → %q", want, back)
		}
	})
}
