package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
)

// clientToken asks for a feed token as resource client k, with scope ("":
// none asked) and extra headers.
func (e *env) clientToken(k *agent.Key, scope string, header ...string) *response {
	e.t.Helper()
	f := url.Values{"grant_type": {httpapi.ClientCredentialsGrantType}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.post("/token", e.authForm(k, f), header...)
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("a resource server gets a feed token", func(t *testing.T) {
		r := e.clientToken(e.rs, "ssf.read")
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if r.str("token_type") != "Bearer" || r.str("scope") != "ssf.read" || r.Body["expires_in"] != float64(600) {
			t.Errorf("answer %s", r.Raw)
		}
		if _, ok := r.Body["refresh_token"]; ok {
			t.Error("a client credentials answer must not carry a refresh token (RFC 6749 §4.4.3)")
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		raw := r.str("access_token")
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
		if err != nil || jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != "at+jwt" {
			t.Fatalf("token header: %v %v", err, jws)
		}
		c, err := e.svc.VerifyClientToken(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != gitURI || c.ClientID != gitURI || c.Audience != e.api.Issuer()+"/ssf" || c.Issuer != e.api.Issuer() ||
			c.JTI == "" || c.Expiry-c.IssuedAt != 600 || c.Scope != "ssf.read" {
			t.Errorf("claims %+v", c)
		}
		if _, err := e.api.AuthenticateClientToken(raw, []string{broker.ScopeSSFRead}); err != nil {
			t.Errorf("read route: %v", err)
		}
		_, err = e.api.AuthenticateClientToken(raw, []string{broker.ScopeSSFManage})
		if broker.ErrorCode(err) != broker.EFORBIDDEN || broker.ErrorReason(err) != broker.ReasonInsufficientScope {
			t.Errorf("manage route with ssf.read: %v, want insufficient_scope", err)
		}
		e.clock.Advance(10 * time.Minute)
		if _, err := e.svc.VerifyClientToken(raw); broker.ErrorReason(err) != broker.ReasonInvalidToken {
			t.Errorf("after 10 minutes: %v, want invalid_token", err)
		}
	})
	t.Run("no scope asked means both", func(t *testing.T) {
		r := e.clientToken(e.billing, "")
		if r.Status != http.StatusOK || r.str("scope") != "ssf.read ssf.manage" {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		c, err := e.api.AuthenticateClientToken(r.str("access_token"), []string{broker.ScopeSSFManage})
		if err != nil || c.ID != "billing-rs" || c.Resource == nil || c.Method != httpapi.MethodClientToken {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("agents are refused", func(t *testing.T) {
		wantError(t, e.clientToken(e.release, "ssf.read"), http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("client authentication is required", func(t *testing.T) {
		r := e.post("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {gitURI}})
		wantError(t, r, http.StatusUnauthorized, "invalid_client")
	})
	for _, scope := range []string{"contents:read", "ssf.read contents:read", "openid", "ssf.admin"} {
		t.Run("scope "+scope+" is refused", func(t *testing.T) {
			wantError(t, e.clientToken(e.rs, scope), http.StatusBadRequest, "invalid_scope")
		})
	}
	t.Run("a resource other than the feed is refused", func(t *testing.T) {
		f := url.Values{"grant_type": {"client_credentials"}, "resource": {gitURI}}
		wantError(t, e.post("/token", e.authForm(e.rs, f)), http.StatusBadRequest, "invalid_target")
	})
	t.Run("advertised", func(t *testing.T) {
		m := e.get("/.well-known/oauth-authorization-server")
		grants, _ := m.Body["grant_types_supported"].([]any)
		scopes, _ := m.Body["scopes_supported"].([]any)
		if !slices.Contains(grants, any("client_credentials")) || !slices.Contains(scopes, any("ssf.read")) || !slices.Contains(scopes, any("ssf.manage")) {
			t.Errorf("metadata: grants %v scopes %v", grants, scopes)
		}
		if !strings.Contains(e.get("/metrics").Raw, "writ_client_tokens_issued_total 2") {
			t.Error("metrics lack writ_client_tokens_issued_total 2")
		}
	})
}

// TestClientCredentialsNoDPoP: feed tokens are never sender-bound, so an
// issuer that requires DPoP for task tokens does not ask for a proof, and
// a proof sent anyway binds nothing.
func TestClientCredentialsNoDPoP(t *testing.T) {
	e := newEnv(t, envOptions{requireDPoP: true})
	r := e.clientToken(e.rs, "ssf.manage")
	if r.Status != http.StatusOK || r.str("token_type") != "Bearer" {
		t.Fatalf("without a proof: %d %s", r.Status, r.Raw)
	}
	proof, err := dpopKey(t).Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r = e.clientToken(e.rs, "ssf.manage", "DPoP", proof)
	if r.Status != http.StatusOK || r.str("token_type") != "Bearer" {
		t.Fatalf("with a proof: %d %s", r.Status, r.Raw)
	}
	parts := strings.Split(r.str("access_token"), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	if err != nil || !strings.Contains(string(payload), `"aud"`) || strings.Contains(string(payload), `"cnf"`) {
		t.Errorf("feed token payload %s (%v): want no cnf", payload, err)
	}
}

// TestClientTokensAndTaskTokensStayApart: neither kind passes for the other.
func TestClientTokensAndTaskTokensStayApart(t *testing.T) {
	e := newEnv(t, envOptions{})
	task := e.token("contents:read")
	feed := e.clientToken(e.rs, "").str("access_token")
	t.Run("a feed token is inactive at introspection", func(t *testing.T) {
		if r := e.introspect(feed); r.Status != 200 || r.Raw != inactive {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if _, err := e.svc.VerifyAccessToken(feed); err == nil {
			t.Error("a feed token verifies as a task token")
		}
	})
	t.Run("a task token is refused as a feed token", func(t *testing.T) {
		if !httpapi.IsAccessToken(task) {
			t.Fatal("a task token is not recognised as an access token")
		}
		_, err := e.api.AuthenticateClientToken(task, nil)
		if broker.ErrorCode(err) != broker.EUNAUTHORIZED || broker.ErrorReason(err) != broker.ReasonInvalidToken {
			t.Fatalf("%v, want invalid_token", err)
		}
	})
	t.Run("a feed token revokes nothing", func(t *testing.T) {
		if r := e.post("/revoke", e.authForm(e.rs, url.Values{"token": {feed}})); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if r := e.introspect(task); r.Body["active"] != true {
			t.Fatalf("the task token after revoking a feed token: %s", r.Raw)
		}
	})
	t.Run("a client assertion is not an access token", func(t *testing.T) {
		if httpapi.IsAccessToken(e.assertion(e.rs, nil)) {
			t.Error("a client assertion is taken for an access token")
		}
		for _, junk := range []string{"", ".", "x.y.z", "%%%.e30.sig", strings.Repeat("a", 4096) + ".e30.s"} {
			if httpapi.IsAccessToken(junk) {
				t.Errorf("%q is taken for an access token", junk)
			}
		}
	})
}

// FuzzClientToken: no Bearer credential panics the feed's checks, and
// only the one real feed token passes.
func FuzzClientToken(f *testing.F) {
	e := newEnv(f, envOptions{api: unthrottled})
	real := e.clientToken(e.rs, "").str("access_token")
	task := e.token("contents:read")
	parts := strings.Split(real, ".")
	for _, seed := range []string{
		real, task, e.assertion(e.rs, nil), parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2], "", "a.b.c", "..",
		strings.Repeat("e", 17<<10), "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_ = httpapi.IsAccessToken(raw)
		c, err := e.api.AuthenticateClientToken(raw, []string{broker.ScopeSSFRead})
		if err == nil && (raw != real || c.ID != gitURI) {
			t.Fatalf("authenticated %+v with %q", c, raw)
		}
	})
}

// TestIntrospectWithBearerClientToken: a resource server may introspect
// with a client-credentials token carrying the introspect scope (RFC 7662
// §2.1), verified once and cached, instead of a client assertion per call.
func TestIntrospectWithBearerClientToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	task := e.token("contents:read")
	tok := e.clientToken(e.rs, "introspect")
	if tok.Status != 200 || tok.str("scope") != "introspect" {
		t.Fatalf("%d %s", tok.Status, tok.Raw)
	}
	bearer := tok.str("access_token")
	ask := func(cred string, form url.Values) *response {
		return e.post("/introspect", form, "Authorization", "Bearer "+cred)
	}
	for range 3 { // the same token, again and again
		if r := ask(bearer, url.Values{"token": {task}}); r.Status != 200 || r.Body["active"] != true {
			t.Fatalf("introspection with a bearer client token: %d %s", r.Status, r.Raw)
		}
	}
	feedOnly := e.clientToken(e.rs, "ssf.read").str("access_token")
	wantError(t, ask(feedOnly, url.Values{"token": {task}}), http.StatusForbidden, "insufficient_scope")
	wantError(t, ask(task, url.Values{"token": {task}}), http.StatusUnauthorized, "invalid_token")
	both := e.authForm(e.rs, url.Values{"token": {task}})
	wantError(t, ask(bearer, both), http.StatusBadRequest, "invalid_request")
}
