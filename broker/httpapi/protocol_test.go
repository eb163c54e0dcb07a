package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
)

func TestStrictForms(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := func() string {
		return e.authForm(e.release, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {"x"}}).Encode()
	}
	for _, tc := range []struct {
		name, method, path, contentType, body string
		header                                []string
		status                                int
		code                                  string
	}{
		{"JSON body", "POST", "/token", "application/json", `{"grant_type":"x"}`, nil, 400, "invalid_request"},
		{"no content type", "POST", "/token", "", good(), nil, 400, "invalid_request"},
		{"latin-1 charset", "POST", "/token", "application/x-www-form-urlencoded; charset=iso-8859-1", good(), nil, 400, "invalid_request"},
		{"UTF-8 charset", "POST", "/token", "application/x-www-form-urlencoded; charset=UTF-8", good(), nil, 400, "invalid_grant"},
		{"query string", "POST", "/token?grant_type=x", "application/x-www-form-urlencoded", good(), nil, 400, "invalid_request"},
		{"duplicate grant_type", "POST", "/token", "application/x-www-form-urlencoded", good() + "&grant_type=" + url.QueryEscape(httpapi.CIBAGrantType), nil, 400, "invalid_request"},
		{"bad escape", "POST", "/token", "application/x-www-form-urlencoded", good() + "&x=%zz", nil, 400, "invalid_request"},
		{"invalid UTF-8", "POST", "/token", "application/x-www-form-urlencoded", good() + "&x=%ff%fe", nil, 400, "invalid_request"},
		{"too many parameters", "POST", "/token", "application/x-www-form-urlencoded", good() + strings.Repeat("&p=1", 40), nil, 400, "invalid_request"},
		{"body too large", "POST", "/bc-authorize", "application/x-www-form-urlencoded", "x=" + strings.Repeat("a", 70<<10), nil, 413, "invalid_request"},
		{"GET token", "GET", "/token", "", "", nil, 405, "invalid_request"},
		{"POST metadata", "POST", "/jwks", "application/x-www-form-urlencoded", "", nil, 405, "invalid_request"},
		{"unsupported grant", "POST", "/token", "application/x-www-form-urlencoded", "grant_type=password", nil, 400, "unsupported_grant_type"},
		{"no grant type", "POST", "/token", "application/x-www-form-urlencoded", "auth_req_id=x", nil, 400, "invalid_request"},
		{"no client auth", "POST", "/token", "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape(httpapi.CIBAGrantType) + "&auth_req_id=x", nil, 401, "invalid_client"},
		{"HTTP Basic", "POST", "/token", "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape(httpapi.CIBAGrantType) + "&auth_req_id=x", []string{"Authorization", "Basic cmVsZWFzZS1ib3Q6c2VjcmV0"}, 401, "invalid_client"},
		{"client_secret", "POST", "/token", "application/x-www-form-urlencoded", "grant_type=" + url.QueryEscape(httpapi.CIBAGrantType) + "&client_id=release-bot&client_secret=s", nil, 401, "invalid_client"},
		{"assertion and Basic", "POST", "/token", "application/x-www-form-urlencoded", good(), []string{"Authorization", "Basic eDp5"}, 401, "invalid_client"},
		{"unknown endpoint", "GET", "/authorize", "", "", nil, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.url+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			r := e.do(req)
			wantError(t, r, tc.status, tc.code)
			if tc.status == 405 && r.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// Unknown parameters are ignored (RFC 6749 §3.2), empty ones are absent.
	f := e.authForm(e.release, taskForm("contents:read"))
	f.Set("acr_values", "x")
	f.Set("user_code", "")
	f.Set("x-vendor", "1")
	if r := e.post("/bc-authorize", f); r.Status != 200 {
		t.Fatalf("unknown parameters: %s", r.Raw)
	}
}

// TestClientAssertions covers RFC 7523 §3 and CIBA §7.1's audiences.
func TestClientAssertions(t *testing.T) {
	e := newEnv(t, envOptions{})
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name   string
		make   func() string
		extra  url.Values
		typ    string
		wantOK bool
	}{
		{"aud issuer", func() string { return e.assertion(e.release, nil) }, nil, "", true},
		{"aud token endpoint", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.api.Issuer() + "/token"} })
		}, nil, "", true},
		{"aud backchannel endpoint", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.api.Issuer() + "/bc-authorize"} })
		}, nil, "", true},
		{"aud introspection endpoint", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.api.Issuer() + "/introspect"} })
		}, nil, "", false},
		{"aud another server", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example"} })
		}, nil, "", false},
		{"aud also another server", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.api.Issuer(), "https://other.example"} })
		}, nil, "", false},
		{"no aud", func() string { return e.assertion(e.release, func(c *jwt.Claims) { c.Audience = nil }) }, nil, "", false},
		{"exp too far ahead", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(e.clock.Now().Add(10 * time.Minute)) })
		}, nil, "", false},
		{"expired", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(e.clock.Now().Add(-time.Minute)) })
		}, nil, "", false},
		{"no exp", func() string { return e.assertion(e.release, func(c *jwt.Claims) { c.Expiry = nil }) }, nil, "", false},
		{"not yet valid", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(e.clock.Now().Add(time.Minute)) })
		}, nil, "", false},
		{"no jti", func() string { return e.assertion(e.release, func(c *jwt.Claims) { c.ID = "" }) }, nil, "", false},
		{"iss is not sub", func() string { return e.assertion(e.release, func(c *jwt.Claims) { c.Subject = "triage-bot" }) }, nil, "", false},
		{"unknown client", func() string {
			return e.assertion(e.release, func(c *jwt.Claims) { c.Issuer, c.Subject = "nobody", "nobody" })
		}, nil, "", false},
		{"another client's key", func() string {
			return e.assertion(e.triage, func(c *jwt.Claims) { c.Issuer, c.Subject = "release-bot", "release-bot" })
		}, nil, "", false},
		{"client_id matches", func() string { return e.assertion(e.release, nil) }, url.Values{"client_id": {"release-bot"}}, "", true},
		{"client_id differs", func() string { return e.assertion(e.release, nil) }, url.Values{"client_id": {"triage-bot"}}, "", false},
		{"typ at+jwt", func() string { return e.assertionTyp(e.release, "at+jwt") }, nil, "", false},
		{"typ dpop+jwt", func() string { return e.assertionTyp(e.release, "dpop+jwt") }, nil, "", false},
		{"typ client-authentication+jwt", func() string { return e.assertionTyp(e.release, "client-authentication+jwt") }, nil, "", true},
		{"alg HS256", func() string {
			c := jwt.Claims{Issuer: "release-bot", Subject: "release-bot", Audience: jwt.Audience{e.api.Issuer()},
				Expiry: jwt.NewNumericDate(e.clock.Now().Add(time.Minute)), ID: randomID()}
			return signJWT(t, hmacKey, jose.HS256, "JWT", c)
		}, nil, "", false},
		{"alg none", func() string {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
			c, _ := json.Marshal(map[string]any{"iss": "release-bot", "sub": "release-bot", "aud": e.api.Issuer(),
				"exp": e.clock.Now().Add(time.Minute).Unix(), "jti": randomID()})
			return h + "." + base64.RawURLEncoding.EncodeToString(c) + "."
		}, nil, "", false},
		{"not a JWT", func() string { return "not-a-jwt" }, nil, "", false},
		{"unknown assertion type", func() string { return e.assertion(e.release, nil) }, nil, "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := taskForm("contents:read")
			typ := tc.typ
			if typ == "" {
				typ = httpapi.AssertionTypeJWTBearer
			}
			f.Set("client_assertion_type", typ)
			f.Set("client_assertion", tc.make())
			for k, v := range tc.extra {
				f[k] = v
			}
			r := e.post("/bc-authorize", f)
			if tc.wantOK {
				if r.Status != 200 {
					t.Fatalf("refused: %s", r.Raw)
				}
				return
			}
			wantError(t, r, http.StatusUnauthorized, "invalid_client")
		})
	}
	if m := e.get("/metrics"); !strings.Contains(m.Raw, `writ_client_auth_failures_total{error="invalid_client"}`) {
		t.Error("metrics lack client authentication failures")
	}
}

func (e *env) assertionTyp(k *agent.Key, typ string) string {
	now := e.clock.Now()
	c := jwt.Claims{Issuer: k.AgentID, Subject: k.AgentID, Audience: jwt.Audience{e.api.Issuer()},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: randomID()}
	return signJWT(e.t, &k.JWK, jose.SignatureAlgorithm(k.JWK.Algorithm), typ, c)
}

// token gets release-bot a DPoP-bound token for scope.
func (e *env) token(scope string) string {
	e.t.Helper()
	id := e.submit(e.release, taskForm(scope))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		e.t.Fatal(err)
	}
	r := e.poll(e.release, id, dpopKey(e.t))
	if r.Status != 200 {
		e.t.Fatalf("token: %s", r.Raw)
	}
	return r.str("access_token")
}

const inactive = "{\"active\":false}\n"

func TestIntrospection(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("contents:read")
	t.Run("authentication required", func(t *testing.T) {
		wantError(t, e.post("/introspect", url.Values{"token": {tok}}), 401, "invalid_client")
	})
	t.Run("agents may not", func(t *testing.T) {
		wantError(t, e.post("/introspect", e.authForm(e.release, url.Values{"token": {tok}})), 403, "unauthorized_client")
	})
	t.Run("token required", func(t *testing.T) {
		wantError(t, e.post("/introspect", e.authForm(e.rs, nil)), 400, "invalid_request")
	})
	t.Run("another audience's server learns nothing", func(t *testing.T) {
		r := e.post("/introspect", e.authForm(e.billing, url.Values{"token": {tok}}))
		if r.Status != 200 || r.Raw != inactive {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	})
	for name, raw := range map[string]string{
		"malformed": "not.a.token", "garbage": "x", "huge": strings.Repeat("a", 20<<10),
		"tampered": tok[:len(tok)-4] + "AAAA", "a DPoP proof": "eyJhbGciOiJFUzI1NiJ9.e30.sig",
	} {
		t.Run(name, func(t *testing.T) {
			if r := e.introspect(raw); r.Status != 200 || r.Raw != inactive {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}
	t.Run("active", func(t *testing.T) {
		r := e.introspect(tok)
		for _, k := range []string{"scope", "client_id", "sub", "aud", "iss", "jti", "sid", "token_type"} {
			if r.str(k) == "" {
				t.Errorf("active response lacks %s: %s", k, r.Raw)
			}
		}
		if r.Body["exp"] == nil || r.Body["cnf"] == nil || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("active response: %s, Cache-Control %q", r.Raw, r.Header.Get("Cache-Control"))
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		tok := e.token("contents:read")
		e.clock.Advance(broker.DefaultLimits.DefaultTTL + time.Second)
		if r := e.introspect(tok); r.Raw != inactive {
			t.Fatalf("%s", r.Raw)
		}
	})
	t.Run("revoked everything and frozen", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		tok := e.token("contents:read")
		if _, err := e.svc.RevokeAll(context.Background(), e.op, "incident", true); err != nil {
			t.Fatal(err)
		}
		if r := e.introspect(tok); r.Raw != inactive {
			t.Fatalf("%s", r.Raw)
		}
		// Frozen: requests are refused at once.
		wantError(t, e.post("/bc-authorize", e.authForm(e.release, taskForm("contents:read"))), 403, "access_denied")
	})
}

func TestRevocation(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("contents:read")
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"another agent's token", e.authForm(e.triage, url.Values{"token": {tok}})},
		{"a resource server", e.authForm(e.rs, url.Values{"token": {tok}})},
		{"an unknown token", e.authForm(e.release, url.Values{"token": {"eyJ.eyJ.sig"}})},
		{"garbage", e.authForm(e.release, url.Values{"token": {"%%%"}, "token_type_hint": {"refresh_token"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.post("/revoke", tc.form); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			if r := e.introspect(tok); r.Body["active"] != true {
				t.Fatalf("the token was revoked by %s: %s", tc.name, r.Raw)
			}
		})
	}
	wantError(t, e.post("/revoke", url.Values{"token": {tok}}), 401, "invalid_client")
	wantError(t, e.post("/revoke", e.authForm(e.release, nil)), 400, "invalid_request")
	if r := e.post("/revoke", e.authForm(e.release, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})); r.Status != 200 {
		t.Fatalf("own revocation: %s", r.Raw)
	}
	if r := e.introspect(tok); r.Raw != inactive {
		t.Fatalf("after revocation: %s", r.Raw)
	}
}

// TestRFC9449TokenRequestProof: the RFC's own token-endpoint proof (Figure
// 5) is accepted at a fixed clock by a server whose public URL is the
// RFC's, although it listens on loopback (htu comes from the configured
// URL, never from Host), and the token is bound to the RFC's key.
func TestRFC9449TokenRequestProof(t *testing.T) {
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
		"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
		"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
		"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj" +
		"oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia" +
		"WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg" +
		"4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	e := newEnv(t, envOptions{publicURL: "https://server.example.com", now: time.Unix(1562262616, 0)})
	id := e.submit(e.release, taskForm("contents:read"))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		t.Fatal(err)
	}
	form := e.authForm(e.release, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}})
	r := e.post("/token", form, "DPoP", proof)
	if r.Status != 200 || r.str("token_type") != "DPoP" {
		t.Fatalf("RFC 9449 proof at the token endpoint: %s", r.Raw)
	}
	claims, err := e.svc.VerifyAccessToken(r.str("access_token"))
	if err != nil || claims.Cnf == nil || claims.Cnf.JKT != jkt {
		t.Fatalf("cnf: %+v, %v; want jkt %s", claims.Cnf, err, jkt)
	}
	form = e.authForm(e.release, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}})
	wantError(t, e.post("/token", form, "DPoP", proof), 400, "invalid_dpop_proof") // replayed
	// A minute and a bit later, a fresh copy of it would be too old.
	e2 := newEnv(t, envOptions{publicURL: "https://server.example.com", now: time.Unix(1562262616+120, 0)})
	form = e2.authForm(e2.release, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {"x"}})
	wantError(t, e2.post("/token", form, "DPoP", proof), 400, "invalid_dpop_proof")
}

// TestOffTheShelfClient drives the token endpoint with
// golang.org/x/oauth2/clientcredentials, overriding grant_type as
// STANDARDS.md §1 describes, and x/oauth2's context HTTP client carrying
// a DPoP transport: a standard library can be an agent.
func TestOffTheShelfClient(t *testing.T) {
	e := newEnv(t, envOptions{requireDPoP: true})
	detail := `[{"type":"` + broker.TaskDetailType + `","actions":["contents:write","pulls:write"],"locations":["` + gitURI + `/acme/web"]}]`
	f := taskForm("contents:write pulls:write")
	f.Set("authorization_details", detail)
	id := e.submit(e.release, f)

	signer := dpopKey(t)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &dpop.Transport{Signer: signer}})
	poll := func() (*oauth2.Token, error) {
		cfg := clientcredentials.Config{
			ClientID: "release-bot", TokenURL: e.url + "/token", AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: url.Values{
				"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id},
				"client_assertion_type": {httpapi.AssertionTypeJWTBearer},
				"client_assertion":      {e.assertion(e.release, nil)}, // fresh for every poll
			},
		}
		return cfg.Token(ctx)
	}
	_, err := poll()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "authorization_pending" {
		t.Fatalf("first poll: %v, want authorization_pending", err)
	}
	narrowed := broker.AuthorizationDetail{Type: broker.TaskDetailType, Actions: []string{"pulls:write"}, Locations: []string{gitURI + "/acme/web"}}
	if _, err := e.svc.Narrow(context.Background(), e.op, id, broker.Terms{Scopes: []string{"pulls:write"}, Resource: gitURI,
		TTL: 5 * time.Minute, Details: []broker.AuthorizationDetail{narrowed}}, "PRs only"); err != nil {
		t.Fatal(err)
	}
	tok, err := poll()
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	if tok.TokenType != "DPoP" || tok.Extra("scope") != "pulls:write" || tok.RefreshToken != "" {
		t.Fatalf("token: type %q scope %v refresh %q", tok.TokenType, tok.Extra("scope"), tok.RefreshToken)
	}
	details, _ := tok.Extra("authorization_details").([]any)
	if len(details) != 1 || !strings.Contains(mustJSON(t, details), `"actions":["pulls:write"]`) {
		t.Fatalf("granted authorization_details: %v", tok.Extra("authorization_details"))
	}
	if time.Until(tok.Expiry) > 5*time.Minute+time.Second {
		t.Errorf("token expires in %s, beyond the narrowed 5m", time.Until(tok.Expiry))
	}
	if claims, _ := e.svc.VerifyAccessToken(tok.AccessToken); claims.Cnf == nil || claims.Cnf.JKT != signer.JKT() {
		t.Error("the token is not bound to the transport's key")
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeIssuer is an OpenID provider for workload identities on loopback:
// discovery, JWKS, and ES256 tokens.
type fakeIssuer struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newFakeIssuer(t testing.TB) *fakeIssuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fi := &fakeIssuer{key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": fi.URL, "jwks_uri": fi.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"ES256"}, "subject_types_supported": []string{"public"},
			"response_types_supported": []string{"id_token"}, "authorization_endpoint": fi.URL + "/auth"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "svid", Algorithm: "ES256", Use: "sig"}}})
	})
	fi.Server = httptest.NewServer(mux)
	t.Cleanup(fi.Close)
	return fi
}

func (fi *fakeIssuer) token(t testing.TB, sub, aud string, exp time.Time) string {
	c := jwt.Claims{Issuer: fi.URL, Subject: sub, Audience: jwt.Audience{aud}, Expiry: jwt.NewNumericDate(exp),
		IssuedAt: jwt.NewNumericDate(time.Now())}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: fi.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "svid"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestWorkloadIdentity(t *testing.T) {
	idp := newFakeIssuer(t)
	const spiffeID = "spiffe://acme.example/ns/ops/sa/rotator"
	e := newEnv(t, envOptions{config: func(c *broker.Config) {
		c.Agents = append(c.Agents, broker.Agent{ID: "rotator",
			Workload: &broker.WorkloadIdentity{Issuer: idp.URL, Subject: spiffeID},
			Ceiling:  []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read"}}}})
	}})
	now := e.clock.Now()
	for _, tc := range []struct {
		name, typ, assertion, clientID string
		ok                             bool
	}{
		{"jwt-spiffe", httpapi.AssertionTypeSPIFFE, idp.token(t, spiffeID, e.api.Issuer(), now.Add(5*time.Minute)), "", true},
		{"reused within its lifetime", httpapi.AssertionTypeSPIFFE, "", "", true},
		{"jwt-bearer with client_id", httpapi.AssertionTypeJWTBearer, idp.token(t, spiffeID, e.api.Issuer(), now.Add(5*time.Minute)), "rotator", true},
		{"client_id of another agent", httpapi.AssertionTypeSPIFFE, idp.token(t, spiffeID, e.api.Issuer(), now.Add(5*time.Minute)), "release-bot", false},
		{"another workload", httpapi.AssertionTypeSPIFFE, idp.token(t, spiffeID+"-x", e.api.Issuer(), now.Add(5*time.Minute)), "", false},
		{"SPIFFE ID of the trust domain only", httpapi.AssertionTypeSPIFFE, idp.token(t, "spiffe://acme.example", e.api.Issuer(), now.Add(5*time.Minute)), "", false},
		{"another audience", httpapi.AssertionTypeSPIFFE, idp.token(t, spiffeID, "https://other.example", now.Add(5*time.Minute)), "", false},
		{"expired", httpapi.AssertionTypeSPIFFE, idp.token(t, spiffeID, e.api.Issuer(), now.Add(-time.Minute)), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.assertion
			if a == "" {
				a = idp.token(t, spiffeID, e.api.Issuer(), now.Add(5*time.Minute))
				for i := 0; i < 2; i++ {
					f := taskForm("contents:read")
					f.Set("client_assertion_type", tc.typ)
					f.Set("client_assertion", a)
					if r := e.post("/bc-authorize", f); r.Status != 200 {
						t.Fatalf("use %d: %s", i+1, r.Raw)
					}
				}
				return
			}
			f := taskForm("contents:read")
			f.Set("client_assertion_type", tc.typ)
			f.Set("client_assertion", a)
			if tc.clientID != "" {
				f.Set("client_id", tc.clientID)
			}
			r := e.post("/bc-authorize", f)
			if tc.ok {
				if r.Status != 200 {
					t.Fatalf("%s", r.Raw)
				}
				req, _ := e.svc.Request(context.Background(), r.str("auth_req_id"))
				if req.AgentID != "rotator" {
					t.Fatalf("request filed for %q", req.AgentID)
				}
				return
			}
			wantError(t, r, http.StatusUnauthorized, "invalid_client")
		})
	}
	t.Run("issuer unreachable", func(t *testing.T) {
		down := newFakeIssuer(t)
		down.Close()
		e := newEnv(t, envOptions{config: func(c *broker.Config) {
			c.Agents = append(c.Agents, broker.Agent{ID: "rotator", Workload: &broker.WorkloadIdentity{Issuer: down.URL, Subject: spiffeID},
				Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read"}}}})
		}})
		f := taskForm("contents:read")
		f.Set("client_assertion_type", httpapi.AssertionTypeSPIFFE)
		c := jwt.Claims{Issuer: down.URL, Subject: spiffeID, Audience: jwt.Audience{e.api.Issuer()}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}
		f.Set("client_assertion", signJWT(t, down.key, jose.ES256, "JWT", c))
		wantError(t, e.post("/bc-authorize", f), http.StatusUnauthorized, "invalid_client")
	})
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.token("contents:read")
	e.submit(e.release, taskForm("contents:read"))
	if r := e.get("/healthz"); r.Status != 200 || r.str("status") != "ok" {
		t.Fatalf("healthz: %d %s", r.Status, r.Raw)
	}
	m := e.get("/metrics")
	for _, want := range []string{
		`writ_http_requests_total{code="200",endpoint="bc-authorize"} 2`,
		`writ_tokens_issued_total{token_type="DPoP"} 1`,
		`writ_pending_requests 1`,
		`writ_http_request_duration_seconds_bucket{endpoint="token"`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Another package mounts a route on the same server.
	e.api.Handle("GET /ssf/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	if r := e.get("/ssf/status"); r.Status != http.StatusNoContent {
		t.Fatalf("mounted route: %d", r.Status)
	}
	if !strings.Contains(e.get("/metrics").Raw, `endpoint="GET /ssf/status"`) {
		t.Error("mounted route not counted")
	}
}
