package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/writhq/writ/broker"
)

// FuzzParseForm: any body is parsed or refused with a 4xx OAuth error;
// what is accepted has no duplicate, empty or invalid UTF-8 parameter.
func FuzzParseForm(f *testing.F) {
	for _, seed := range []string{
		"", "a=b", "a=b&a=c", "a=&a=b", "resource=x&resource=y", "scope=contents%3Aread+pulls%3Awrite&login_hint=oncall",
		"%zz=1", "a=%ff", "&&&a=1&&", "=x", "a==b", "a=b;c=d", strings.Repeat("p=1&", 40),
		"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=abc&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := parseForm(body)
		if err != nil {
			if err.Status < 400 || err.Status >= 500 || err.Code == "" {
				t.Fatalf("refusal %+v is not a 4xx OAuth error", err)
			}
			return
		}
		if len(form) > maxFormParams {
			t.Fatalf("%d parameters accepted", len(form))
		}
		for k, v := range form {
			if k == "" || v == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("accepted parameter %q=%q", k, v)
			}
		}
	})
}

// FuzzParseDetails: any authorization_details value is parsed or refused
// with invalid_authorization_details; what is accepted is writ's type,
// has no empty list or string, and survives a round trip unchanged.
func FuzzParseDetails(f *testing.F) {
	typ := `"type":"` + broker.TaskDetailType + `"`
	for _, seed := range []string{
		`[]`, `[{` + typ + `}]`, `[{` + typ + `,"actions":["contents:read"],"locations":["https://git.acme.example/a"]}]`,
		`[{` + typ + `,"actions":["a"],"datatypes":["d"],"identifier":"i","privileges":["p"],"intent":"why"}]`,
		`[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"}}]`,
		`[{` + typ + `,"actions":["a"],"actions":["b"]}]`, `[{` + typ + `,"Actions":["a"]}]`,
		`[{` + typ + `,"actions":[]}]`, `[{` + typ + `,"actions":[null]}]`, `{}`, `[`, `[{}] x`, `null`,
		`[{"type":"https://writ.dev/agent-task","actions":["\u0000"]}]`, `[{` + typ + `,"intent":"\ud800"}]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		details, err := parseDetails(raw)
		if err != nil {
			if err.Status != 400 || err.Code != broker.ReasonInvalidDetails {
				t.Fatalf("refusal %+v is not invalid_authorization_details", err)
			}
			return
		}
		for _, d := range details {
			if d.Type != broker.TaskDetailType {
				t.Fatalf("accepted type %q", d.Type)
			}
			for _, l := range [][]string{d.Locations, d.Actions, d.Datatypes, d.Privileges} {
				if l != nil && len(l) == 0 {
					t.Fatal("accepted an empty list")
				}
				for _, s := range l {
					if s == "" {
						t.Fatal("accepted an empty string")
					}
				}
			}
		}
		if len(details) == 0 {
			return
		}
		b, jerr := json.Marshal(details)
		if jerr != nil {
			t.Fatal(jerr)
		}
		again, err := parseDetails(string(b))
		if err != nil {
			t.Fatalf("re-encoded details %s refused: %v", b, err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(b) {
			t.Fatalf("round trip changed %s to %s", b, b2)
		}
	})
}
