package httpapi

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestReadForm: the fast paths (the exact content type, a body read by
// its Content-Length) accept and refuse what the general ones do.
func TestReadForm(t *testing.T) {
	const limit = 64
	for _, tc := range []struct {
		name, method, target, ctype, body string
		length                            int64 // -2: as the body; -1: unknown (chunked)
		status                            int   // 0: accepted
		want                              form
	}{
		{"exact type", "POST", "/t", "application/x-www-form-urlencoded", "token=a.b&x=%2B+1", -2, 0, form{"token": "a.b", "x": "+ 1"}},
		{"charset", "POST", "/t", "application/x-www-form-urlencoded; charset=UTF-8", "a=b", -2, 0, form{"a": "b"}},
		{"other case", "POST", "/t", "Application/X-WWW-Form-Urlencoded", "a=b", -2, 0, form{"a": "b"}},
		{"other charset", "POST", "/t", "application/x-www-form-urlencoded; charset=latin1", "a=b", -2, 400, nil},
		{"json", "POST", "/t", "application/json", "{}", -2, 400, nil},
		{"no type", "POST", "/t", "", "a=b", -2, 400, nil},
		{"empty body", "POST", "/t", "application/x-www-form-urlencoded", "", -2, 0, form{}},
		{"at the limit", "POST", "/t", "application/x-www-form-urlencoded", "a=" + strings.Repeat("b", limit-2), -2, 0, form{"a": strings.Repeat("b", limit-2)}},
		{"declared over the limit", "POST", "/t", "application/x-www-form-urlencoded", "a=" + strings.Repeat("b", limit), -2, 413, nil},
		{"chunked within the limit", "POST", "/t", "application/x-www-form-urlencoded", "a=b", -1, 0, form{"a": "b"}},
		{"chunked over the limit", "POST", "/t", "application/x-www-form-urlencoded", "a=" + strings.Repeat("b", limit), -1, 413, nil},
		{"shorter than declared", "POST", "/t", "application/x-www-form-urlencoded", "a=b", 10, 400, nil},
		{"bad escape", "POST", "/t", "application/x-www-form-urlencoded", "a=%zz", -2, 400, nil},
		{"query", "POST", "/t?a=b", "application/x-www-form-urlencoded", "", -2, 400, nil},
		{"get", "GET", "/t", "application/x-www-form-urlencoded", "", -2, 405, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			if tc.length != -2 {
				r.ContentLength = tc.length
			}
			f, err := readForm(httptest.NewRecorder(), r, limit)
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("refused: %+v", err)
			case tc.status != 0 && (err == nil || err.Status != tc.status):
				t.Fatalf("got %v %+v, want status %d", f, err, tc.status)
			case tc.status == 0 && !sameForm(f, tc.want):
				t.Fatalf("got %v, want %v", f, tc.want)
			}
		})
	}
}

func sameForm(a, b form) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// FuzzUnescape: the form's unescaping is url.QueryUnescape's, value and
// error, whatever the input.
func FuzzUnescape(f *testing.F) {
	for _, seed := range []string{"", "a", "a+b", "%41", "%zz", "%", "a%2", "eyJhbGciOi.x_y-z", "+", "%E2%82%AC", "é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := unescape(s)
		want, werr := url.QueryUnescape(s)
		if got != want || (err == nil) != (werr == nil) {
			t.Fatalf("unescape(%q) = %q, %v; QueryUnescape: %q, %v", s, got, err, want, werr)
		}
	})
}
