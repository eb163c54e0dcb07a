package guard_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire/ssfwire"
)

// publicURL is where the guarded API says it lives; proofs' htu use it.
const publicURL = "https://api.example"

// startGuard runs a guard against h until the test ends and waits for its
// feed to catch up.
func startGuard(t testing.TB, h *ssftest.Harness, receiver string, mod func(*guard.Config)) *guard.Guard {
	t.Helper()
	g := newGuard(t, h, receiver, mod)
	runGuard(t, g)
	waitReady(t, g)
	return g
}

func newGuard(t testing.TB, h *ssftest.Harness, receiver string, mod func(*guard.Config)) *guard.Guard {
	t.Helper()
	cfg := guard.Config{Issuer: h.URL, Audience: ssftest.Resource, PublicURL: publicURL,
		HTTPClient: h.Client(receiver), ReportInterval: 50 * time.Millisecond, Logger: ssftest.Logger(t)}
	if mod != nil {
		mod(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func runGuard(t testing.TB, g *guard.Guard) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("guard Run: %v", err)
		}
	})
}

func waitReady(t testing.TB, g *guard.Guard) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, why := g.Ready()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard not ready within 30s: %s", why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// request builds a request to the guarded API.
func request(method, path, scheme, token string, proof ...string) *http.Request {
	r := httptest.NewRequest(method, "http://internal:8080"+path, nil)
	if scheme != "" {
		r.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proof {
		r.Header.Add("DPoP", p)
	}
	return r
}

// newSigner returns a DPoP signer with a fresh Ed25519 key.
func newSigner(t testing.TB) *dpop.Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func proof(t testing.TB, s *dpop.Signer, method, path, token string, mod ...func(*dpop.ProofOptions)) string {
	t.Helper()
	o := dpop.ProofOptions{AccessToken: token}
	for _, m := range mod {
		m(&o)
	}
	p, err := s.Proof(method, publicURL+path, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// claimsOf decodes a token's claims, to forge variations signed by writ.
func claimsOf(t testing.TB, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forge signs claims as writ with typ, after mod changes them.
func forge(t testing.TB, h *ssftest.Harness, token, typ string, mod func(map[string]any)) string {
	t.Helper()
	m := claimsOf(t, token)
	m["jti"] = "forged-" + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
	mod(m)
	s, err := h.Svc.Sign(typ, m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// foreignToken signs claims with a key writ never published.
func foreignToken(t testing.TB, claims map[string]any, alg jose.SignatureAlgorithm, key any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "not-writs-key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitRefused polls Check until it refuses with reason.
func waitRefused(t testing.TB, g *guard.Guard, mk func() *http.Request, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := g.Check(context.Background(), mk())
		if e, ok := err.(*guard.Error); ok && e.Reason == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not refused with %s within 30s (last: %v)", reason, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRefusals: every way a request is refused, with real tokens from the
// issuer, and the answer each gets.
func TestRefusals(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-table", nil)
	bearer := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	signer := newSigner(t)
	bound := h.Mint(ssftest.Agent, signer.JKT(), "contents:read").AccessToken
	otherKey := newSigner(t)
	revoked := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(revoked.Grant.ID, "compromised host")
	waitRefused(t, g, func() *http.Request { return request("GET", "/repos", "Bearer", revoked.AccessToken) }, guard.ReasonRevoked)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Unix()
	tamper := func(tok string) string { // flip the signature's first character
		i := strings.LastIndexByte(tok, '.') + 1
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		return tok[:i] + string(c) + tok[i+1:]
	}
	replayed := proof(t, signer, "GET", "/repos", bound)
	if _, err := g.Check(context.Background(), request("GET", "/repos", "DPoP", bound, replayed)); err != nil {
		t.Fatalf("first use of the proof: %v", err)
	}

	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string // "" for a challenge without error
		reason string
	}{
		{"no credentials", func() *http.Request { return request("GET", "/repos", "", "") }, 401, "", guard.ReasonNoToken},
		{"other scheme", func() *http.Request { return request("GET", "/repos", "Basic", "dXNlcjpwYXNz") }, 401, "", guard.ReasonNoToken},
		{"two Authorization headers", func() *http.Request {
			r := request("GET", "/repos", "Bearer", bearer)
			r.Header.Add("Authorization", "Bearer "+bearer)
			return r
		}, 400, "invalid_request", guard.ReasonBadRequest},
		{"empty token", func() *http.Request { return request("GET", "/repos", "Bearer", "") }, 400, "invalid_request", guard.ReasonBadRequest},
		{"not a JWT", func() *http.Request { return request("GET", "/repos", "Bearer", "opaque-token") }, 401, "invalid_token", guard.ReasonMalformed},
		{"garbage JWT", func() *http.Request { return request("GET", "/repos", "Bearer", "a.b.c") }, 401, "invalid_token", guard.ReasonMalformed},
		{"ID token typ", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "JWT", func(map[string]any) {}))
		}, 401, "invalid_token", guard.ReasonType},
		{"alg none", func() *http.Request {
			hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
			return request("GET", "/repos", "Bearer", hdr+"."+strings.Split(bearer, ".")[1]+".")
		}, 401, "invalid_token", guard.ReasonAlg},
		{"alg HS256", func() *http.Request {
			return request("GET", "/repos", "Bearer", foreignToken(t, claimsOf(t, bearer), jose.HS256, []byte("0123456789abcdef0123456789abcdef")))
		}, 401, "invalid_token", guard.ReasonAlg},
		{"bad signature", func() *http.Request { return request("GET", "/repos", "Bearer", tamper(bearer)) }, 401, "invalid_token", guard.ReasonSignature},
		{"unknown key", func() *http.Request {
			return request("GET", "/repos", "Bearer", foreignToken(t, claimsOf(t, bearer), jose.EdDSA, edKey))
		}, 401, "invalid_token", guard.ReasonUnknownKey},
		{"wrong issuer", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { m["iss"] = "https://evil.example" }))
		}, 401, "invalid_token", guard.ReasonIssuer},
		{"wrong audience", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { m["aud"] = "https://billing.example" }))
		}, 401, "invalid_token", guard.ReasonAudience},
		{"expired", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { m["exp"] = now - 60 }))
		}, 401, "invalid_token", guard.ReasonExpired},
		{"not yet valid", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { m["nbf"] = now + 600 }))
		}, 401, "invalid_token", guard.ReasonNotYetValid},
		{"no exp", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { delete(m, "exp") }))
		}, 401, "invalid_token", guard.ReasonClaims},
		{"no sid", func() *http.Request {
			return request("GET", "/repos", "Bearer", forge(t, h, bearer, "at+jwt", func(m map[string]any) { delete(m, "sid") }))
		}, 401, "invalid_token", guard.ReasonClaims},
		{"revoked grant", func() *http.Request { return request("GET", "/repos", "Bearer", revoked.AccessToken) }, 401, "invalid_token", guard.ReasonRevoked},
		{"DPoP-bound token as Bearer", func() *http.Request { return request("GET", "/repos", "Bearer", bound) }, 401, "invalid_token", guard.ReasonBoundAsBearer},
		{"unbound token as DPoP", func() *http.Request {
			return request("GET", "/repos", "DPoP", bearer, proof(t, signer, "GET", "/repos", bearer))
		}, 401, "invalid_token", guard.ReasonNotBound},
		{"no proof", func() *http.Request { return request("GET", "/repos", "DPoP", bound) }, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"two proofs", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, signer, "GET", "/repos", bound), proof(t, signer, "GET", "/repos", bound))
		}, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"proof for another method", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, signer, "POST", "/repos", bound))
		}, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"proof for another URL", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, signer, "GET", "/admin", bound))
		}, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"old proof", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, signer, "GET", "/repos", bound, func(o *dpop.ProofOptions) { o.Now = time.Now().Add(-10 * time.Minute) }))
		}, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"proof for another token (ath)", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, signer, "GET", "/repos", bearer))
		}, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"replayed proof", func() *http.Request { return request("GET", "/repos", "DPoP", bound, replayed) }, 401, "invalid_dpop_proof", guard.ReasonDPoPProof},
		{"proof by another key", func() *http.Request {
			return request("GET", "/repos", "DPoP", bound, proof(t, otherKey, "GET", "/repos", bound))
		}, 401, "invalid_dpop_proof", guard.ReasonKeyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := g.Check(context.Background(), c.req())
			e, ok := err.(*guard.Error)
			if !ok {
				t.Fatalf("Check = %v, want a refusal", err)
			}
			if e.Status != c.status || e.Code != c.code || e.Reason != c.reason {
				t.Fatalf("refused %d %q %q (%s), want %d %q %q", e.Status, e.Code, e.Reason, e.Description, c.status, c.code, c.reason)
			}
			if strings.Contains(e.Description, bearer) || strings.Contains(e.Description, bound) {
				t.Fatal("the description contains a token")
			}
			w := httptest.NewRecorder()
			g.WriteError(w, err)
			challenges := strings.Join(w.Header().Values("WWW-Authenticate"), " | ")
			if w.Code != c.status || !strings.Contains(challenges, `Bearer realm="https://api.example"`) ||
				!strings.Contains(challenges, `DPoP realm="https://api.example"`) || !strings.Contains(challenges, `algs="`) {
				t.Fatalf("answer %d, challenges %s", w.Code, challenges)
			}
			if c.code == "" && strings.Contains(challenges, "error=") {
				t.Errorf("a request without credentials got an error code: %s", challenges)
			}
			if c.code != "" && !strings.Contains(challenges, `error="`+c.code+`"`) {
				t.Errorf("challenge lacks error=%q: %s", c.code, challenges)
			}
			var body map[string]string
			if json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error_description"] == "" {
				t.Errorf("body %s", w.Body)
			}
		})
	}

	// And the ones that pass.
	if p, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", bearer)); err != nil || p.Agent != ssftest.Agent || !p.HasScope("contents:read") {
		t.Errorf("bearer token: %v %+v", err, p)
	}
	p, err := g.Check(context.Background(), request("GET", "/repos?page=2", "DPoP", bound, proof(t, signer, "GET", "/repos", bound)))
	if err != nil || p.JKT != signer.JKT() || p.GrantID == "" || p.Approver.Subject != ssftest.Operator.Subject {
		t.Errorf("DPoP token: %v %+v", err, p)
	}
	st := g.Stats()
	if st.Refused[guard.ReasonRevoked] == 0 || st.Refused[guard.ReasonDPoPProof] == 0 || st.Accepted < 3 {
		t.Errorf("stats: %+v", st)
	}
}

// TestRequireDPoP: a resource that takes only bound tokens refuses bearer
// ones, and says DPoP in its challenges only.
func TestRequireDPoP(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-dpop", func(c *guard.Config) { c.RequireDPoP = true })
	bearer := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", bearer))
	if e, ok := err.(*guard.Error); !ok || e.Reason != guard.ReasonDPoPRequired {
		t.Fatalf("bearer token: %v", err)
	}
	w := httptest.NewRecorder()
	g.WriteError(w, err)
	if v := w.Header().Values("WWW-Authenticate"); len(v) != 1 || !strings.HasPrefix(v[0], "DPoP ") || !strings.Contains(v[0], `error="invalid_token"`) {
		t.Errorf("challenges %q", v)
	}
}

// TestAlgAllowList: a guard that accepts only EdDSA refuses writ's (default
// ES256) tokens.
func TestAlgAllowList(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := newGuard(t, h, "rs-eddsa", func(c *guard.Config) { c.Algs = []jose.SignatureAlgorithm{jose.EdDSA} })
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok))
	if e, ok := err.(*guard.Error); !ok || e.Reason != guard.ReasonAlg {
		t.Fatalf("ES256 token at an EdDSA-only guard: %v", err)
	}
	if _, err := guard.New(guard.Config{Issuer: h.URL, Audience: ssftest.Resource, Algs: []jose.SignatureAlgorithm{jose.HS256}}); err == nil {
		t.Error("a guard accepting HS256 was built")
	}
	if _, err := guard.New(guard.Config{Issuer: "http://writ.example", Audience: ssftest.Resource}); err == nil {
		t.Error("a guard trusting a plain-http issuer off loopback was built")
	}
}

// TestMiddleware: scope and authorization-details coverage, and a grant
// narrowed while live.
func TestMiddleware(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-mw", nil)
	tok := h.MintWith(ssftest.Agent, "", broker.SubmitInput{Scopes: []string{"contents:read", "contents:write"},
		Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Locations: []string{ssftest.Resource + "/repos/acme/web"},
			Actions: []string{"contents:write"}}}})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, found := guard.FromContext(r.Context())
		if !found {
			t.Error("no principal in the context")
		}
		w.Header().Set("X-Agent", p.Agent)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /read", g.RequireScope("contents:read")(ok))
	mux.Handle("POST /write", g.RequireScope("contents:write")(ok))
	mux.Handle("POST /admin", g.RequireScope("admin")(ok))
	mux.Handle("POST /web", g.RequireAction(ssftest.Resource+"/repos/acme/web/blob/main", "contents:write")(ok))
	mux.Handle("POST /api", g.RequireAction(ssftest.Resource+"/repos/acme/api", "contents:write")(ok))
	mux.Handle("GET /any", g.Middleware(ok))
	serve := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, request(method, path, "Bearer", tok.AccessToken))
		return w
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/read", 200}, {"POST", "/write", 200}, {"POST", "/admin", 403}, {"POST", "/web", 200}, {"POST", "/api", 403}, {"GET", "/any", 200},
	} {
		w := serve(c.method, c.path)
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.path, w.Code, c.status, w.Body)
		}
		if c.status == 200 && w.Header().Get("X-Agent") != ssftest.Agent {
			t.Errorf("%s %s: principal not passed on", c.method, c.path)
		}
		if c.status == 403 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("%s %s: challenge %q", c.method, c.path, w.Header().Get("WWW-Authenticate"))
		}
	}
	if w := serve("POST", "/admin"); !strings.Contains(w.Header().Get("WWW-Authenticate"), `scope="admin"`) {
		t.Errorf("insufficient_scope challenge names no scope: %q", w.Header().Get("WWW-Authenticate"))
	}

	// The operator narrows the live grant to read-only: writing stops,
	// reading goes on.
	if _, err := h.Svc.NarrowGrant(h.Ctx, ssftest.Operator, tok.Grant.ID,
		broker.Terms{Scopes: []string{"contents:read"}, TTL: 10 * time.Minute}, "read only"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for serve("POST", "/write").Code != http.StatusForbidden {
		if time.Now().After(deadline) {
			t.Fatal("narrowing did not reach the guard within 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if w := serve("GET", "/read"); w.Code != 200 {
		t.Errorf("read after narrowing: %d", w.Code)
	}
	p, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok.AccessToken))
	if err != nil || !p.Narrowed || p.HasScope("contents:write") || p.ExpiresAt.After(tok.Grant.CreatedAt.Add(10*time.Minute)) || len(p.Details) != 0 {
		t.Errorf("narrowed principal: %v %+v", err, p)
	}
}

// TestAgentAndGlobalRevocation: revoking an agent refuses its tokens and no
// other agent's; revoking everything refuses every token minted before.
func TestAgentAndGlobalRevocation(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-epochs", nil)
	mine := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	other := h.Mint(ssftest.OtherAgent, "", "contents:read").AccessToken
	check := func(tok string) error {
		_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok))
		return err
	}
	if check(mine) != nil || check(other) != nil {
		t.Fatal("fresh tokens refused")
	}
	if _, err := h.Svc.RevokeAgent(h.Ctx, ssftest.Operator, ssftest.Agent, "host compromised", false); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, g, func() *http.Request { return request("GET", "/x", "Bearer", mine) }, guard.ReasonRevoked)
	if err := check(other); err != nil {
		t.Errorf("another agent's token refused: %v", err)
	}
	after := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	if err := check(after); err != nil {
		t.Errorf("a token minted after the agent revocation: %v", err)
	}

	if _, err := h.Svc.RevokeAll(h.Ctx, ssftest.Operator, "incident", false); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, g, func() *http.Request { return request("GET", "/x", "Bearer", other) }, guard.ReasonRevoked)
	if err := check(after); err == nil {
		t.Error("a token minted before revoke-all still accepted")
	}
	if err := check(h.Mint(ssftest.OtherAgent, "", "contents:read").AccessToken); err != nil {
		t.Errorf("a token minted after revoke-all: %v", err)
	}
}

// TestRevocationAfterKeyRotation: the incident response "rotate the key,
// then revoke" reaches a guard whose JWKS is a moment behind, even one made
// to fetch it just before (a junk kid), instead of the SET being refused
// for an unknown key and the revocation lost.
func TestRevocationAfterKeyRotation(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-rotation", nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok)); err != nil {
		t.Fatal(err)
	}
	_, junkKey, _ := ed25519.GenerateKey(rand.Reader)
	junk := foreignToken(t, claimsOf(t, tok), jose.EdDSA, junkKey) // prompts a JWKS fetch
	if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", junk)); err == nil {
		t.Fatal("a token with a foreign key accepted")
	}
	if _, err := h.Svc.RotateKeys(h.Ctx, ssftest.Operator, ""); err != nil {
		t.Fatal(err)
	}
	grant := claimsOf(t, tok)["sid"].(string)
	if _, err := h.Svc.Revoke(h.Ctx, ssftest.Operator, grant, "agent host compromised"); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, g, func() *http.Request { return request("GET", "/x", "Bearer", tok) }, guard.ReasonRevoked)
}

// TestFailClosed: a guard that has not caught up, or whose feed went
// silent, refuses every token with 503, and says why.
func TestFailClosed(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 50 * time.Millisecond}})
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken

	idle := newGuard(t, h, "rs-idle", nil) // never Run
	_, err := idle.Check(context.Background(), request("GET", "/x", "Bearer", tok))
	if e, ok := err.(*guard.Error); !ok || e.Status != 503 || e.Reason != guard.ReasonFeedUnavailable {
		t.Fatalf("guard without a feed: %v", err)
	}
	w := httptest.NewRecorder()
	idle.WriteError(w, err)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("answer %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}

	// A feed behind a switch we can turn off.
	var broken atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "unreachable", http.StatusBadGateway)
			return
		}
		h.Server.Config.Handler.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	viaProxy := newGuard(t, h, "rs-stale", func(c *guard.Config) {
		c.StaleAfter = 300 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: rewrite{to: proxy.URL, next: h.Client("rs-stale").Transport}}
	})
	runGuard(t, viaProxy)
	waitReady(t, viaProxy)
	if _, err := viaProxy.Check(context.Background(), request("GET", "/x", "Bearer", tok)); err != nil {
		t.Fatalf("fresh feed: %v", err)
	}
	broken.Store(true)
	waitRefused(t, viaProxy, func() *http.Request { return request("GET", "/x", "Bearer", tok) }, guard.ReasonFeedUnavailable)
	if st := viaProxy.Stats(); st.FeedFresh || !strings.Contains(st.FeedProblem, "no word from the revocation feed") {
		t.Errorf("stats while stale: %+v", st)
	}
	broken.Store(false)
	waitReady(t, viaProxy)
	if _, err := viaProxy.Check(context.Background(), request("GET", "/x", "Bearer", tok)); err != nil {
		t.Errorf("after the feed came back: %v", err)
	}
}

// rewrite sends every request to another origin.
type rewrite struct {
	to   string
	next http.RoundTripper
}

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	u := *r.URL
	host := strings.TrimPrefix(rw.to, "http://")
	u.Host = host
	r.URL = &u
	r.Host = host
	return rw.next.RoundTrip(r)
}

// TestStreamPausedFailsClosed: when writ pauses the guard's stream, the
// guard hears it and fails closed until the stream is enabled again.
func TestStreamPausedFailsClosed(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 100 * time.Millisecond}})
	g := startGuard(t, h, "rs-paused", nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	streams := h.Transmitter.Streams()
	if len(streams) != 1 {
		t.Fatalf("%d streams", len(streams))
	}
	if err := h.Transmitter.SetStatus(h.Ctx, streams[0].ID, ssfwire.StatusPaused, "operator"); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, g, func() *http.Request { return request("GET", "/x", "Bearer", tok) }, guard.ReasonFeedUnavailable)
	if err := h.Transmitter.SetStatus(h.Ctx, streams[0].ID, ssfwire.StatusEnabled, ""); err != nil {
		t.Fatal(err)
	}
	waitReady(t, g)
}

// TestIntrospectionFallback: with an introspection endpoint configured, a
// guard without a fresh feed asks writ about each token instead of refusing.
func TestIntrospectionFallback(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	var calls atomic.Int64
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer rs-introspect" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		res, err := h.Svc.Introspect(r.Context(), r.FormValue("token"))
		if err != nil {
			http.Error(w, "internal", 500)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]bool{"active": res.Active})
	}))
	defer introspect.Close()
	g := newGuard(t, h, "rs-introspect", func(c *guard.Config) { c.IntrospectionEndpoint = introspect.URL })
	live := h.Mint(ssftest.Agent, "", "contents:read")
	dead := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(dead.Grant.ID, "x")
	if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", live.AccessToken)); err != nil {
		t.Errorf("live token via introspection: %v", err)
	}
	_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", dead.AccessToken))
	if e, ok := err.(*guard.Error); !ok || e.Reason != guard.ReasonInactive {
		t.Errorf("revoked token via introspection: %v", err)
	}
	for range 5 {
		_, _ = g.Check(context.Background(), request("GET", "/x", "Bearer", live.AccessToken))
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d introspection calls, want 2 (answers are cached)", n)
	}
}

// TestUnknownKidRefetchIsRateLimited: a flood of tokens with unknown kids
// does not make the guard fetch writ's JWKS for each.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-kid", func(c *guard.Config) { c.JWKSRefetchInterval = 300 * time.Millisecond })
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	before := h.JWKSFetches.Load()
	for range 50 {
		_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", foreignToken(t, claimsOf(t, tok), jose.EdDSA, key)))
		if e, ok := err.(*guard.Error); !ok || e.Reason != guard.ReasonUnknownKey {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := h.JWKSFetches.Load() - before; n > 1 {
		t.Errorf("%d JWKS fetches for 50 unknown kids, want at most 1", n)
	}
	// A rotated key is picked up once the rate limit allows.
	if _, err := h.Svc.RotateKeys(h.Ctx, ssftest.Operator, ""); err != nil {
		t.Fatal(err)
	}
	newTok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", newTok)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("token signed with a rotated-in key not accepted within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUseReports: uses after a revocation reach writ as refused uses, for
// the console's "revoked 3s ago, 2 refused uses since, 0 accepted".
func TestUseReports(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	// The receiver is the resource itself: a resource server reports uses
	// of its own grants only.
	g := startGuard(t, h, ssftest.Resource, nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	for range 3 {
		if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok.AccessToken)); err != nil {
			t.Fatal(err)
		}
	}
	h.Revoke(tok.Grant.ID, "x")
	// Wait for the revocation without using the token, so every use after
	// it is one the guard refuses.
	deadline := time.Now().Add(30 * time.Second)
	for g.Stats().RevokedGrants == 0 {
		if time.Now().After(deadline) {
			t.Fatal("revocation did not reach the guard within 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	for range 2 {
		if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok.AccessToken)); err == nil {
			t.Fatal("revoked token accepted")
		}
	}
	for {
		if err := h.Svc.FlushUsage(h.Ctx); err != nil {
			t.Fatal(err)
		}
		gr, err := h.Svc.Grant(h.Ctx, tok.Grant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gr.RefusedAfterEnd == 2 && gr.Uses == 3 {
			if gr.AcceptedAfterEnd != 0 {
				t.Errorf("accepted after revocation: %d", gr.AcceptedAfterEnd)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uses %d, refused after end %d, accepted after end %d; guard %+v", gr.Uses, gr.RefusedAfterEnd, gr.AcceptedAfterEnd, g.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-metrics", nil)
	_, _ = g.Check(context.Background(), request("GET", "/x", "", ""))
	var b strings.Builder
	if err := g.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`writ_guard_refused_total{reason="no_token"} 1`, "writ_guard_feed_fresh 1", "# TYPE writ_guard_accepted_total counter"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

// TestClientAssertion: a guard authenticating with fresh private_key_jwt
// assertions, in the Authorization header at the SSF endpoints and in the
// form at introspection, never reusing one.
func TestClientAssertion(t *testing.T) {
	ssftest.CheckLeaks(t)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	const clientID = ssftest.Resource
	var issuer atomic.Pointer[string]
	var mu sync.Mutex
	seen := map[string]bool{}
	verify := func(assertion string) (string, error) {
		jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			return "", err
		}
		if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != "client-authentication+jwt" {
			return "", fmt.Errorf("typ %q", typ)
		}
		b, err := jws.Verify(pub)
		if err != nil {
			return "", err
		}
		var c struct {
			Iss, Sub, Aud, JTI string
			Exp                int64
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return "", err
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.Iss != clientID || c.Sub != clientID || c.Aud != *issuer.Load():
			return "", fmt.Errorf("claims %+v", c)
		case c.Exp < time.Now().Unix() || c.JTI == "" || seen[c.JTI]:
			return "", fmt.Errorf("expired or replayed assertion")
		}
		seen[c.JTI] = true
		return c.Iss, nil
	}
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{Authenticate: func(r *http.Request) (string, error) {
		a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", fmt.Errorf("no assertion")
		}
		return verify(a)
	}}})
	issuer.Store(&h.URL)
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.FormValue("client_assertion_type") != guard.AssertionTypeJWTBearer {
			http.Error(w, "bad client authentication", http.StatusUnauthorized)
			return
		}
		if _, err := verify(r.FormValue("client_assertion")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]bool{"active": true})
	}))
	defer introspect.Close()
	assertion, err := guard.PrivateKeyJWT(clientID, key, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	g := startGuard(t, h, "", func(c *guard.Config) {
		c.HTTPClient = &http.Client{Transport: tr}
		c.ClientAssertion = assertion
	})
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok)); err != nil {
		t.Fatalf("check: %v", err)
	}
	// The fallback path authenticates in the form.
	idle := newGuard(t, h, "", func(c *guard.Config) {
		c.HTTPClient = &http.Client{Transport: tr}
		c.ClientAssertion = assertion
		c.IntrospectionEndpoint = introspect.URL
	})
	if _, err := idle.Check(context.Background(), request("GET", "/x", "Bearer", tok)); err != nil {
		t.Fatalf("introspection with a client assertion: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 3 {
		t.Errorf("only %d assertions seen", len(seen))
	}
}
