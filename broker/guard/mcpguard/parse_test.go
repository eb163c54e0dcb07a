package mcpguard

import (
	"reflect"
	"strings"
	"testing"

	"github.com/writhq/writ/broker/guard"
)

func testGuard(t testing.TB) *Guard {
	g, err := guard.New(guard.Config{Issuer: "http://127.0.0.1:1", Audience: "https://mcp.example/deploy"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Guard: g})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNeeds: what each body needs, and the bodies the guard refuses
// because the SDK could read them differently.
func TestNeeds(t *testing.T) {
	m := testGuard(t)
	const loc = "https://mcp.example/deploy"
	for _, tt := range []struct {
		name, body string
		want       []Need
		err        string
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{}}}`,
			[]Need{{"tools/call", loc, "tool:deploy"}}, ""},
		{"resources/read", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"https://mcp.example/deploy/manifests/web"}}`,
			[]Need{{"resources/read", "https://mcp.example/deploy/manifests/web", "resources:read"}}, ""},
		{"tools/list needs only a token", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, ""},
		{"a response needs only a token", `{"jsonrpc":"2.0","id":1,"result":{}}`, nil, ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"status"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy"}}]`,
			[]Need{{"tools/call", loc, "tool:status"}, {"tools/call", loc, "tool:deploy"}}, ""},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"deploy"}}`,
			[]Need{{"tools/call", loc, "tool:deploy"}}, ""},
		// A case-insensitive decoder would read the last "Name"; the SDK reads "name".
		{"a name in another case is another member", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","Name":"status"}}`,
			[]Need{{"tools/call", loc, "tool:deploy"}}, ""},
		{"Method is not method", `{"jsonrpc":"2.0","id":1,"Method":"tools/list","method":"tools/call","params":{"name":"deploy"}}`,
			[]Need{{"tools/call", loc, "tool:deploy"}}, ""},
		{"duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"status","name":"deploy"}}`, nil, "twice"},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"deploy"}}`, nil, "twice"},
		{"name not a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["deploy"]}}`, nil, "name string"},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, nil, "params"},
		{"not JSON", `{"jsonrpc":`, nil, "not"},
		{"trailing data", `{"jsonrpc":"2.0","id":1,"method":"tools/list"} {"method":"tools/call"}`, nil, "after"},
		{"invalid UTF-8", "{\"method\":\"tools/call\",\"params\":{\"name\":\"de\xffploy\"}}", nil, "UTF-8"},
		{"huge batch", "[" + strings.Repeat(`{"jsonrpc":"2.0","method":"ping"},`, 64) + `{"jsonrpc":"2.0","method":"ping"}]`, nil, "at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Needs([]byte(tt.body))
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
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzNeeds: no body panics, and a tools/call the guard accepts always
// yields its action.
func FuzzNeeds(f *testing.F) {
	m := testGuard(f)
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy"}}`,
		`[{"method":"resources/read","params":{"uri":"x"}}]`, `{"method":"tools/list"}`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		needs, err := m.Needs(body)
		if err != nil {
			return
		}
		for _, n := range needs {
			if n.Action == "" || n.Location == "" {
				t.Fatalf("need %+v", n)
			}
		}
	})
}
