package guard_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire"
)

// TestProtectedResourceMetadata: the document has the members RFC 9728 §2
// defines for what the guard enforces, is served at the well-known URL of
// the resource identifier (§3.1), and needs no token.
func TestProtectedResourceMetadata(t *testing.T) {
	h := ssftest.New(t, ssftest.Options{})
	g := newGuard(t, h, "rs-meta", func(c *guard.Config) {
		c.RequireDPoP = true
		c.Scopes = []string{"contents:read", "contents:write"}
		c.ResourceName = "Source hosting"
	})
	mux := http.NewServeMux()
	g.HandleMetadata(mux)
	// ssftest.Resource is https://api.example: no path to append.
	if wantPath := "/.well-known/oauth-protected-resource"; g.MetadataPath() != wantPath {
		t.Fatalf("metadata path %q, want %q", g.MetadataPath(), "/.well-known/oauth-protected-resource")
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "http://internal:8080"+g.MetadataPath(), nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                              ssftest.Resource,
		"authorization_servers":                 []any{h.URL},
		"scopes_supported":                      []any{"contents:read", "contents:write"},
		"bearer_methods_supported":              []any{"header"},
		"resource_name":                         "Source hosting",
		"dpop_bound_access_tokens_required":     true,
		"authorization_details_types_supported": []any{wire.TaskDetailType},
	}
	for k, v := range want {
		if !reflect.DeepEqual(doc[k], v) {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	if algs, _ := doc["dpop_signing_alg_values_supported"].([]any); !slices.Contains(algs, any("ES256")) {
		t.Errorf("dpop_signing_alg_values_supported %v lacks ES256", algs)
	}
}

// TestChallenges: a request without a token gets RFC 6750 §3 challenges
// with resource_metadata (RFC 9728 §5.1) and no error code; a call the
// token does not cover gets 403 insufficient_scope naming only the missing
// scope, with the covering authorization detail the agent SDK reads.
func TestChallenges(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-challenge", nil)
	meta := wire.ProtectedResourceMetadataURL(ssftest.Resource)
	tok := h.MintWith(ssftest.Agent, "", broker.SubmitInput{Scopes: []string{"contents:read", "contents:write"},
		Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Locations: []string{ssftest.Resource + "/repos/acme/web"},
			Actions: []string{"contents:write"}}}})
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("POST /scopes", g.RequireScope("contents:read", "pulls:write", "workflows:write")(ok))
	mux.Handle("POST /api", g.RequireAction(ssftest.Resource+"/repos/acme/api", "contents:write")(ok))

	t.Run("no token", func(t *testing.T) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, request("POST", "/api", "", ""))
		cs, err := wire.ParseChallenges(w.Header().Values("WWW-Authenticate"))
		if err != nil || w.Code != 401 || len(cs) != 2 {
			t.Fatalf("%d %v %q", w.Code, err, w.Header().Values("WWW-Authenticate"))
		}
		for _, c := range cs {
			if c.Params["resource_metadata"] != meta || c.Params["realm"] != ssftest.Resource || c.Params["error"] != "" {
				t.Errorf("%s challenge %v: want realm, resource_metadata %s and no error (RFC 6750 §3.1)", c.Scheme, c.Params, meta)
			}
		}
	})
	t.Run("missing scopes only", func(t *testing.T) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, request("POST", "/scopes", "Bearer", tok.AccessToken))
		sc, err := wire.ParseScopeChallenge(w.Header())
		if err != nil || w.Code != 403 {
			t.Fatalf("%d %v", w.Code, err)
		}
		if !slices.Equal(sc.Scopes, []string{"pulls:write", "workflows:write"}) || sc.ResourceMetadata != meta {
			t.Errorf("challenge %+v: want only the missing scopes and resource_metadata", sc)
		}
	})
	t.Run("action at a location", func(t *testing.T) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, request("POST", "/api", "Bearer", tok.AccessToken))
		sc, err := wire.ParseScopeChallenge(w.Header())
		if err != nil || w.Code != 403 {
			t.Fatalf("%d %v", w.Code, err)
		}
		want := []wire.AuthorizationDetail{{Type: wire.TaskDetailType, Actions: []string{"contents:write"}, Locations: []string{ssftest.Resource + "/repos/acme/api"}}}
		if !slices.Equal(sc.Scopes, []string{"contents:write"}) || !reflect.DeepEqual(sc.Details, want) {
			t.Errorf("challenge %+v, want scope contents:write and detail %+v", sc, want)
		}
		var body struct {
			Error   string                     `json:"error"`
			Scope   string                     `json:"scope"`
			Details []wire.AuthorizationDetail `json:"authorization_details"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "insufficient_scope" ||
			body.Scope != "contents:write" || !reflect.DeepEqual(body.Details, want) {
			t.Errorf("body %s", w.Body)
		}
	})
}
