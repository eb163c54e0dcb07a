package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
)

const (
	gitURI     = "https://git.acme.example"
	billingURI = "https://billing.acme.example"
)

var quiet = slog.New(slog.DiscardHandler)

// clock is a settable test clock, close to real time so that caches
// keyed on the wall clock behave.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a running agent API on loopback with a real store.
type env struct {
	t     testing.TB
	svc   *broker.Service
	api   *httpapi.Server
	url   string
	clock *clock
	cfg   *broker.Config

	release *agent.Key // release-bot: everything at git
	triage  *agent.Key // triage-bot: contents:read at git
	rs      *agent.Key // the resource client for git
	billing *agent.Key // the resource client for billing
	op      broker.Operator
}

// envOptions adjust the environment before it starts.
type envOptions struct {
	publicPath  string // a path under the loopback URL for the issuer
	publicURL   string // a fixed issuer (the server still listens on loopback)
	requireDPoP bool
	now         time.Time
	broker      func(*broker.Options)
	serverNow   func() time.Time // the HTTP layer's clock, if not the broker's
	config      func(*broker.Config)
	api         func(*httpapi.Options)
	store       func(broker.Store) broker.Store // wraps the in-memory store
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	e := &env{t: t, op: broker.Operator{Issuer: "https://idp.test", Subject: "op1", Name: "Priya"}}
	e.url = "http://" + ts.Listener.Addr().String() + o.publicPath
	if o.publicURL != "" {
		e.url = o.publicURL
	}
	start := o.now
	if start.IsZero() {
		start = time.Now().Truncate(time.Second)
	}
	e.clock = newClock(start)
	e.release = mustKey(t, "release-bot")
	e.triage = mustKey(t, "triage-bot")
	e.rs = mustKey(t, gitURI)
	e.billing = mustKey(t, "billing-rs")
	e.cfg = &broker.Config{
		Approvers: []string{"oncall", "platform-leads"},
		Limits:    broker.DefaultLimits,
		Resources: []broker.Resource{
			{URI: gitURI, Name: "Source hosting", Scopes: []broker.Scope{
				{Name: "contents:read", Risk: broker.RiskLow}, {Name: "contents:write", Risk: broker.RiskHigh},
				{Name: "pulls:write", Risk: broker.RiskMedium}, {Name: "workflows:write", Risk: broker.RiskCritical},
				{Name: "secrets:read", Risk: broker.RiskCritical},
			}},
			{URI: billingURI, Name: "Billing", Scopes: []broker.Scope{{Name: "customers:read", Risk: broker.RiskMedium}}},
		},
		Agents: []broker.Agent{
			{ID: "release-bot", Keys: []jose.JSONWebKey{e.release.PublicJWK()}, MaxTTL: time.Hour,
				Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read", "contents:write", "pulls:write", "workflows:write", "secrets:read"}}}},
			{ID: "triage-bot", Keys: []jose.JSONWebKey{e.triage.PublicJWK()}, MaxTTL: 15 * time.Minute,
				Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read"}}}},
		},
		RequireDPoP: o.requireDPoP,
	}
	if o.config != nil {
		o.config(e.cfg)
	}
	bo := broker.Options{Issuer: e.url, Now: e.clock.Now, PollInterval: time.Second, Logger: quiet,
		SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000}
	if o.broker != nil {
		o.broker(&bo)
	}
	var st broker.Store = brokertest.NewStore()
	if o.store != nil {
		st = o.store(st)
	}
	svc, err := broker.New(context.Background(), e.cfg, st, bo)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	e.svc = svc
	ao := httpapi.Options{
		ResourceClients: []httpapi.ResourceClient{
			{ID: gitURI, Keys: []jose.JSONWebKey{e.rs.PublicJWK()}},
			{ID: "billing-rs", Keys: []jose.JSONWebKey{e.billing.PublicJWK()}, Audiences: []string{billingURI}},
		},
		Now:    o.serverNow,
		Logger: quiet,
	}
	if o.api != nil {
		o.api(&ao)
	}
	e.api, err = httpapi.New(svc, ao)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	ts.Config.Handler = e.api
	ts.Start()
	t.Cleanup(ts.Close)
	if o.publicURL != "" {
		e.url = "http://" + ts.Listener.Addr().String() // where requests go
	}
	return e
}

func mustKey(t testing.TB, id string) *agent.Key {
	t.Helper()
	k, err := agent.GenerateKey(id, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client returns an SDK client for key, on the env's clock.
func (e *env) client(k *agent.Key) *agent.Client {
	e.t.Helper()
	c, err := agent.New(context.Background(), e.url, k, agent.Options{Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("agent.New: %v", err)
	}
	return c
}

// assertion makes a client assertion for k, with mutate applied to its
// claims before signing.
func (e *env) assertion(k *agent.Key, mutate func(*jwt.Claims)) string {
	e.t.Helper()
	now := e.clock.Now()
	c := jwt.Claims{Issuer: k.AgentID, Subject: k.AgentID, Audience: jwt.Audience{e.api.Issuer()},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: randomID()}
	if mutate != nil {
		mutate(&c)
	}
	return signJWT(e.t, &k.JWK, jose.SignatureAlgorithm(k.JWK.Algorithm), "JWT", c)
}

func signJWT(t testing.TB, key any, alg jose.SignatureAlgorithm, typ string, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// authForm returns form with a fresh client assertion of k.
func (e *env) authForm(k *agent.Key, form url.Values) url.Values {
	if form == nil {
		form = url.Values{}
	}
	form.Set("client_assertion_type", httpapi.AssertionTypeJWTBearer)
	form.Set("client_assertion", e.assertion(k, nil))
	return form
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r *response) str(k string) string { s, _ := r.Body[k].(string); return s }

// post sends a form to path (relative to the env URL) with extra headers.
func (e *env) post(path string, form url.Values, header ...string) *response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return e.do(req)
}

func (e *env) get(path string) *response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) *response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := &response{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.Body); err != nil {
			e.t.Fatalf("answer of %s is not JSON: %v: %s", req.URL.Path, err, b)
		}
	}
	return out
}

// wantError checks an OAuth error answer.
func wantError(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, status, code)
	}
	if r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("error Content-Type = %q", r.Header.Get("Content-Type"))
	}
}

// taskForm is a valid task request form for release-bot.
func taskForm(scope string) url.Values {
	return url.Values{
		"scope": {scope}, "login_hint": {"oncall"}, "binding_message": {"Open a PR fixing CVE-2026-1234"},
		"resource": {gitURI},
	}
}

// submit sends a task request and returns its auth_req_id.
func (e *env) submit(k *agent.Key, form url.Values) string {
	e.t.Helper()
	r := e.post("/bc-authorize", e.authForm(k, form))
	if r.Status != http.StatusOK || r.str("auth_req_id") == "" {
		e.t.Fatalf("bc-authorize: %d %s", r.Status, r.Raw)
	}
	return r.str("auth_req_id")
}

// dpopKey is a DPoP signer for raw token requests.
func dpopKey(t testing.TB) *dpop.Signer {
	t.Helper()
	s, err := dpop.NewSigner(mustKey(t, "dpop").JWK.Key, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// poll makes a raw token request for id by k, with a proof from s (nil: none).
func (e *env) poll(k *agent.Key, id string, s *dpop.Signer) *response {
	e.t.Helper()
	form := e.authForm(k, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}})
	if s == nil {
		return e.post("/token", form)
	}
	proof, err := s.Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post("/token", form, "DPoP", proof)
}

// introspect asks as the git resource server.
func (e *env) introspect(token string) *response {
	e.t.Helper()
	return e.post("/introspect", e.authForm(e.rs, url.Values{"token": {token}}))
}

func mustRequest(t testing.TB, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func bodyOf(s string) (io.ReadCloser, int64) {
	return io.NopCloser(strings.NewReader(s)), int64(len(s))
}

// newResourceServer is a minimal resource server for gitURI on loopback:
// it checks the token locally and the DPoP proof against cnf.jkt, as the
// guard does.
func newResourceServer(t testing.TB, e *env) *httptest.Server {
	v := &dpop.Verifier{Replay: dpop.NewReplayCache(0), Now: e.clock.Now}
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		claims, err := e.svc.VerifyAccessToken(tok)
		if scheme != "DPoP" || err != nil || claims.Audience != gitURI || claims.Cnf == nil {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		p, err := v.VerifyRequest(r, ts.URL+r.URL.Path, tok)
		if err != nil || p.JKT != claims.Cnf.JKT {
			http.Error(w, "bad proof", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ts.Close)
	return ts
}
