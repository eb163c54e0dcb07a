package wire

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestParseChallenges: the challenge examples of RFC 6750 §3, RFC 9449
// §7.1 and RFC 9728 §5.1, and malformed headers.
func TestParseChallenges(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header []string
		want   []Challenge
		err    string
	}{
		{"RFC 6750 §3 realm only", []string{`Bearer realm="example"`},
			[]Challenge{{"Bearer", map[string]string{"realm": "example"}}}, ""},
		{"RFC 6750 §3 expired", []string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
			[]Challenge{{"Bearer", map[string]string{"realm": "example", "error": "invalid_token", "error_description": "The access token expired"}}}, ""},
		{"RFC 9449 §7.1 algs", []string{`DPoP algs="ES256 PS256"`},
			[]Challenge{{"DPoP", map[string]string{"algs": "ES256 PS256"}}}, ""},
		{"RFC 9449 §7.1 two challenges in one header", []string{`Bearer realm="x", DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"`},
			[]Challenge{{"Bearer", map[string]string{"realm": "x"}},
				{"DPoP", map[string]string{"error": "invalid_token", "error_description": "Invalid DPoP key binding", "algs": "ES256"}}}, ""},
		{"RFC 9728 §5.1", []string{`Bearer resource_metadata="https://resource.example.com/.well-known/oauth-protected-resource"`},
			[]Challenge{{"Bearer", map[string]string{"resource_metadata": "https://resource.example.com/.well-known/oauth-protected-resource"}}}, ""},
		{"token values and quoted pairs", []string{`Bearer error=insufficient_scope, error_description="say \"hi\""`},
			[]Challenge{{"Bearer", map[string]string{"error": "insufficient_scope", "error_description": `say "hi"`}}}, ""},
		{"scheme alone", []string{`Bearer`}, []Challenge{{"Bearer", map[string]string{}}}, ""},
		{"unterminated", []string{`Bearer realm="x`}, nil, "unterminated"},
		{"duplicate parameter", []string{`Bearer error="a", error="b"`}, nil, "twice"},
		{"no value", []string{`Bearer realm=, error="x"`}, nil, "token68"},
		{"control character", []string{"Bearer realm=\"a\x01b\""}, nil, "control"},
		{"too long", []string{"Bearer realm=\"" + strings.Repeat("a", 9000) + "\""}, nil, "too long"},
		{"garbage", []string{`"Bearer"`}, nil, "auth-scheme"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges(tt.header)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseScopeChallenge(t *testing.T) {
	detail := AuthorizationDetail{Type: TaskDetailType, Actions: []string{"tool:deploy"}, Locations: []string{"https://mcp.example/deploy"}}
	enc := EncodeDetails([]AuthorizationDetail{detail})
	for _, tt := range []struct {
		name   string
		header []string
		want   *ScopeChallenge
		err    string
	}{
		{"writ's guard, Bearer and DPoP: DPoP preferred", []string{
			`Bearer realm="deploy", error="insufficient_scope", scope="tool:deploy"`,
			`DPoP realm="deploy", error="insufficient_scope", error_description="no", scope="tool:deploy", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/deploy", authorization_details="` + enc + `", algs="ES256"`},
			&ScopeChallenge{Scheme: "DPoP", Realm: "deploy", Description: "no", Scopes: []string{"tool:deploy"},
				ResourceMetadata: "https://mcp.example/.well-known/oauth-protected-resource/deploy", Details: []AuthorizationDetail{detail}}, ""},
		{"a plain RFC 6750 challenge", []string{`Bearer error="insufficient_scope", scope="a b"`},
			&ScopeChallenge{Scheme: "Bearer", Scopes: []string{"a", "b"}}, ""},
		{"invalid_token is not a scope challenge", []string{`Bearer error="invalid_token"`}, nil, "no insufficient_scope"},
		{"no scope", []string{`Bearer error="insufficient_scope"`}, nil, "names no scope"},
		{"too many scopes", []string{`Bearer error="insufficient_scope", scope="` + strings.Repeat("s ", 17) + `"`}, nil, "at most"},
		{"details not base64url", []string{`Bearer error="insufficient_scope", scope="a", authorization_details="{}"`}, nil, "base64url"},
		{"foreign detail type", []string{`Bearer error="insufficient_scope", scope="a", authorization_details="` +
			EncodeDetails([]AuthorizationDetail{{Type: "payment_initiation"}}) + `"`}, nil, "not writ's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Www-Authenticate": tt.header}
			got, err := ParseScopeChallenge(h)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProtectedResourceMetadataURL(t *testing.T) {
	for _, tt := range [][2]string{
		// RFC 9728 §3.1's example.
		{"https://resource.example.com/resource1", "https://resource.example.com/.well-known/oauth-protected-resource/resource1"},
		{"https://resource.example.com", "https://resource.example.com/.well-known/oauth-protected-resource"},
		{"https://resource.example.com/", "https://resource.example.com/.well-known/oauth-protected-resource"},
		{"http://127.0.0.1:8080/mcp/deploy", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/deploy"},
	} {
		if got := ProtectedResourceMetadataURL(tt[0]); got != tt[1] {
			t.Errorf("%s: %s, want %s", tt[0], got, tt[1])
		}
	}
}

func TestAllowsAtDetail(t *testing.T) {
	d := []AuthorizationDetail{{Type: TaskDetailType, Actions: []string{"tool:deploy"}, Locations: []string{"https://mcp.example/deploy"}}}
	for _, tt := range []struct {
		loc, action string
		want        bool
	}{
		{"https://mcp.example/deploy", "tool:deploy", true},
		{"https://mcp.example/deploy/sub", "tool:deploy", true},
		{"https://mcp.example/deploy/../admin", "tool:deploy", false},
		{"https://mcp.example/deployx", "tool:deploy", false},
		{"https://mcp.example/deploy", "tool:rollback", true}, // no detail names rollback: the whole resource
		{"https://mcp.example/deploy", "tool:status", false},  // no scope
	} {
		if got := AllowsAt([]string{"tool:deploy", "tool:rollback"}, d, tt.loc, tt.action); got != tt.want {
			t.Errorf("%s %s: %v, want %v", tt.loc, tt.action, got, tt.want)
		}
	}
}

// FuzzParseChallenges: no input panics, and whatever parses has a scheme
// made of token characters.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer realm="example"`, `DPoP algs="ES256", Bearer error=x`, `Bearer a="\"", b=c`,
		`Bearer error="insufficient_scope", scope="a", authorization_details="W3t9XQ"`, `Basic abc==`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseChallenges([]string{s})
		if err != nil {
			return
		}
		for _, c := range cs {
			for i := 0; i < len(c.Scheme); i++ {
				if !isTChar(c.Scheme[i]) {
					t.Fatalf("scheme %q", c.Scheme)
				}
			}
		}
		_, _ = ParseScopeChallenge(http.Header{"Www-Authenticate": {s}})
	})
}

// TestDetailWithin: the narrowing rule broker uses once its
// AuthorizationDetail is this type (a list may shrink, never be dropped or
// added), and Clone shares no list.
func TestDetailWithin(t *testing.T) {
	w := AuthorizationDetail{Type: TaskDetailType, Locations: []string{"https://a/x", "https://a/y"}, Actions: []string{"read", "write"}}
	for _, tt := range []struct {
		name string
		d    AuthorizationDetail
		want bool
	}{
		{"same", w, true},
		{"fewer actions", AuthorizationDetail{Type: TaskDetailType, Locations: w.Locations, Actions: []string{"read"}}, true},
		{"actions dropped (unrestricted)", AuthorizationDetail{Type: TaskDetailType, Locations: w.Locations}, false},
		{"datatypes added", AuthorizationDetail{Type: TaskDetailType, Locations: w.Locations, Actions: w.Actions, Datatypes: []string{"pii"}}, false},
		{"another action", AuthorizationDetail{Type: TaskDetailType, Locations: w.Locations, Actions: []string{"admin"}}, false},
		{"another type", AuthorizationDetail{Type: "x", Locations: w.Locations, Actions: w.Actions}, false},
	} {
		if got := tt.d.Within(w); got != tt.want {
			t.Errorf("%s: Within = %v, want %v", tt.name, got, tt.want)
		}
	}
	c := w.Clone()
	c.Actions[0] = "changed"
	if w.Actions[0] != "read" {
		t.Error("Clone shares the actions list")
	}
}
