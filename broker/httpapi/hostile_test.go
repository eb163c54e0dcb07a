package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

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
