package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ratelimit"
)

// authOnly sends a request that needs client authentication and nothing
// else of k: a poll for a task that does not exist, answered invalid_grant
// once the client is authenticated.
func (e *env) authOnly(k *agent.Key) *response {
	e.t.Helper()
	return e.post("/token", e.authForm(k, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {"none"}}))
}

// The attack of issue 10, item 1: one agent sends valid assertions as fast
// as it can, to fill the assertion replay cache. It is told to slow down
// (429 slow_down, Retry-After) once it holds its quota; other agents and
// resource servers still authenticate.
func TestAssertionFloodDoesNotLockOutOthers(t *testing.T) {
	const entries = 64 * 16 // a client may hold 1/16: 64 assertions
	e := newEnv(t, envOptions{api: func(o *httpapi.Options) {
		o.ReplayEntries = entries
		o.ClientAuth = ratelimit.Limit{PerSecond: -1} // the cache quota alone
	}})
	accepted, slowed := 0, 0
	for range 200 {
		switch r := e.authOnly(e.release); {
		case r.Status == http.StatusBadRequest && r.str("error") == "invalid_grant":
			accepted++
		case r.Status == http.StatusTooManyRequests && r.str("error") == "slow_down":
			slowed++
			if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Fatalf("slow_down without a Retry-After: %q", ra)
			}
		default:
			t.Fatalf("flood request: %d %s", r.Status, r.Raw)
		}
	}
	if accepted != entries/16 || slowed != 200-entries/16 {
		t.Fatalf("flooder: %d accepted, %d slowed; want %d accepted", accepted, slowed, entries/16)
	}
	for i := range entries / 16 {
		if r := e.authOnly(e.triage); r.Status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Fatalf("another agent's fresh assertion %d during the flood: %d %s", i, r.Status, r.Raw)
		}
	}
	if r := e.introspect("not-a-token"); r.Status != http.StatusOK {
		t.Fatalf("a resource server's authentication during the flood: %d %s", r.Status, r.Raw)
	}
}

// Each client has its own authentication allowance; one past it is told
// how long to wait, and the others are untouched.
func TestClientAuthRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{api: func(o *httpapi.Options) {
		o.ClientAuth = ratelimit.Limit{PerSecond: 1, Burst: 3}
	}})
	for i := range 3 {
		if r := e.authOnly(e.release); r.Status != http.StatusBadRequest {
			t.Fatalf("request %d within the burst: %d %s", i, r.Status, r.Raw)
		}
	}
	r := e.authOnly(e.release)
	wantError(t, r, http.StatusTooManyRequests, "slow_down")
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want 1", got)
	}
	if !strings.Contains(r.str("error_description"), "release-bot") {
		t.Errorf("description %q does not name the client", r.str("error_description"))
	}
	if r := e.authOnly(e.triage); r.Status != http.StatusBadRequest {
		t.Fatalf("another client while release-bot is throttled: %d %s", r.Status, r.Raw)
	}
	// An assertion that does not verify is not counted against the client
	// it names: nobody can spend another's allowance.
	e.clock.Advance(time.Second) // one authentication refilled
	for range 5 {
		forged := e.assertion(e.triage, func(c *jwt.Claims) { c.Issuer, c.Subject = "release-bot", "release-bot" })
		f := url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {"none"},
			"client_assertion_type": {httpapi.AssertionTypeJWTBearer}, "client_assertion": {forged}}
		wantError(t, e.post("/token", f), http.StatusUnauthorized, "invalid_client")
	}
	if r := e.authOnly(e.release); r.Status != http.StatusBadRequest {
		t.Fatalf("after the bucket refilled: %d %s", r.Status, r.Raw)
	}
}

// A configured resource server, which may introspect with an assertion
// per token, has a limit and a replay cache of its own, far above an
// agent's: the agents' limit and quota never throttle introspection
// (issue 12's introspection target), and neither side can fill the
// other's cache.
func TestResourceServerAuthLimitIsItsOwn(t *testing.T) {
	e := newEnv(t, envOptions{api: func(o *httpapi.Options) {
		o.ClientAuth = ratelimit.Limit{PerSecond: 1, Burst: 3}
		o.ReplayEntries = 1024 // an agent may hold 64 live assertions, a resource server 512
	}})
	for i := range 100 { // beyond an agent's quota and rate
		if r := e.introspect("not-a-token"); r.Status != http.StatusOK {
			t.Fatalf("introspection %d by the resource server: %d %s", i, r.Status, r.Raw)
		}
	}
}

// The attack of issue 10, item 4: an oversized request is refused by its
// size, before it is split into names, and repeated names are dropped
// through a set.
func TestRequestCaps(t *testing.T) {
	e := newEnv(t, envOptions{})
	var many strings.Builder
	for i := 0; many.Len() < 60_000; i++ {
		fmt.Fprintf(&many, "s%d ", i)
	}
	detail := func(actions, locations int) string {
		var d []map[string]any
		for range 2 {
			m := map[string]any{"type": broker.TaskDetailType}
			var as, ls []string
			for i := range actions / 2 {
				as = append(as, fmt.Sprint("act", i, "-", len(d)))
			}
			for i := range locations / 2 {
				ls = append(ls, fmt.Sprint(gitURI, "/r", i, "-", len(d)))
			}
			if len(as) > 0 {
				m["actions"] = as
			}
			if len(ls) > 0 {
				m["locations"] = ls
			}
			d = append(d, m)
		}
		b, _ := json.Marshal(d)
		return string(b)
	}
	cases := []struct {
		name, scope, details, code, why string
	}{
		{"60 KB of distinct scopes", many.String(), "", "invalid_scope", "longer than"},
		{"33 distinct scopes", names(33), "", "invalid_scope", "at most 32"},
		{"a 129-byte scope", strings.Repeat("a", 129), "", "invalid_scope", "longer than 128"},
		{"80 actions over two details", "contents:read", detail(80, 0), "invalid_authorization_details", "at most 64"},
		{"80 locations over two details", "contents:read", detail(0, 80), "invalid_authorization_details", "at most 64"},
	}
	for _, tc := range cases {
		f := taskForm(tc.scope)
		if tc.details != "" {
			f.Set("authorization_details", tc.details)
		}
		r := e.post("/bc-authorize", e.authForm(e.release, f))
		if r.Status != http.StatusBadRequest || r.str("error") != tc.code || !strings.Contains(r.str("error_description"), tc.why) {
			t.Errorf("%s: %d %s, want 400 %s mentioning %q", tc.name, r.Status, r.Raw, tc.code, tc.why)
		}
	}
	// Repeats are not names: 200 copies of one scope are one scope.
	id := e.submit(e.release, taskForm(strings.Repeat("contents:read ", 200)))
	req, err := e.svc.Request(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Terms.Scopes) != 1 {
		t.Fatalf("scopes stored: %v, want one", req.Terms.Scopes)
	}
}

func names(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "n%d ", i)
	}
	return b.String()
}

// The per-agent submission limit is consulted before the request is
// parsed: a throttled agent's oversized request is answered slow_down,
// not invalid_scope, so it cost nothing to read.
func TestThrottledBeforeParsing(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *broker.Config) {
		c.Agents[0].SubmitRate, c.Agents[0].SubmitBurst = 0.01, 1 // release-bot's own limit
	}})
	e.submit(e.release, taskForm("contents:read"))
	r := e.post("/bc-authorize", e.authForm(e.release, taskForm(strings.Repeat("x", 60000))))
	wantError(t, r, http.StatusTooManyRequests, "slow_down")
	if r.Header.Get("Retry-After") == "" {
		t.Error("slow_down without Retry-After")
	}
	// triage-bot has the environment's generous limit.
	for range 3 {
		e.submit(e.triage, taskForm("contents:read"))
	}
}

// Issue 10: /token answers invalid_target when resource names something
// other than the task's resource, and the token can still be collected.
func TestTokenResourceMustBeTheGrants(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		t.Fatal(err)
	}
	form := func(resource string) url.Values {
		return e.authForm(e.release, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}, "resource": {resource}})
	}
	for _, other := range []string{billingURI, gitURI + "/repos/acme", "https://evil.example"} {
		r := e.post("/token", form(other))
		wantError(t, r, http.StatusBadRequest, "invalid_target")
	}
	// Another agent's task is not revealed by a resource mismatch.
	r := e.post("/token", e.authForm(e.triage, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}, "resource": {billingURI}}))
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	if r := e.post("/token", form(gitURI)); r.Status != http.StatusOK {
		t.Fatalf("the right resource: %d %s", r.Status, r.Raw)
	}
}

func TestMetricsBearerToken(t *testing.T) {
	const token = "metrics-token-0123456789"
	e := newEnv(t, envOptions{api: func(o *httpapi.Options) { o.MetricsToken = token }})
	if r := e.get("/metrics"); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("/metrics without the token: %d", r.Status)
	}
	for _, auth := range []string{"Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/metrics", nil)
		req.Header.Set("Authorization", auth)
		if r := e.do(req); r.Status != http.StatusUnauthorized {
			t.Fatalf("/metrics with %q: %d", auth, r.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if r := e.do(req); r.Status != http.StatusOK || !strings.Contains(r.Raw, "writ_") {
		t.Fatalf("/metrics with the token: %d", r.Status)
	}
}

func TestMetricsElsewhere(t *testing.T) {
	e := newEnv(t, envOptions{api: func(o *httpapi.Options) { o.MetricsElsewhere = true }})
	if r := e.get("/metrics"); r.Status != http.StatusNotFound {
		t.Fatalf("/metrics on the public API when served elsewhere: %d", r.Status)
	}
	rec := httptest.NewRecorder()
	e.api.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "writ_") {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
}
