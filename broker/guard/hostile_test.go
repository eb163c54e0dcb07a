package guard_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ratelimit"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// The attack of issue 10, item 1, at a resource server: one agent floods
// the guard with fresh DPoP proofs to fill its replay cache. It is told to
// slow down once its token's key holds its quota, and another agent's
// fresh proofs are still accepted.
func TestProofFloodDoesNotRefuseOthers(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	const quota = 32
	g := startGuard(t, h, "rs-flood", func(c *guard.Config) {
		c.DPoP = &dpop.Verifier{Replay: dpop.NewReplayCacheQuota(64*16, quota)}
		c.ClientLimit = ratelimit.Limit{PerSecond: -1} // the replay quota alone
	})
	flooder, other := newSigner(t), newSigner(t)
	floodTok := h.Mint(ssftest.Agent, flooder.JKT(), "contents:read").AccessToken
	otherTok := h.Mint(ssftest.OtherAgent, other.JKT(), "contents:read").AccessToken
	// Proofs signed with keys the flooder makes up count against its
	// token's key too: new keys earn it no room.
	stranger := newSigner(t)
	accepted, slowed := 0, 0
	for i := range 3 * quota {
		s := flooder
		if i%3 == 0 {
			s = stranger
		}
		_, err := g.Check(context.Background(), request("GET", "/repos", "DPoP", floodTok, proof(t, s, "GET", "/repos", floodTok)))
		var e *guard.Error
		switch {
		case err == nil:
			accepted++
		case errors.As(err, &e) && e.Reason == guard.ReasonThrottled:
			if e.Status != http.StatusTooManyRequests || e.RetryAfter <= 0 {
				t.Fatalf("throttled proof answered %d, Retry-After %s", e.Status, e.RetryAfter)
			}
			slowed++
		case errors.As(err, &e) && e.Reason == guard.ReasonKeyMismatch:
		default:
			t.Fatalf("flood proof %d: %v", i, err)
		}
	}
	if accepted+slowed == 0 || slowed == 0 || accepted > quota {
		t.Fatalf("flooder: %d accepted, %d slowed; want at most %d accepted and the rest slowed", accepted, slowed, quota)
	}
	for i := range quota {
		if _, err := g.Check(context.Background(), request("GET", "/repos", "DPoP", otherTok, proof(t, other, "GET", "/repos", otherTok))); err != nil {
			t.Fatalf("another agent's fresh proof %d during the flood: %v", i, err)
		}
	}
}

// Each agent has its own request allowance at the guard.
func TestGuardClientLimit(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-limit", func(c *guard.Config) {
		c.ClientLimit = ratelimit.Limit{PerSecond: 0.001, Burst: 2}
	})
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	otherTok := h.Mint(ssftest.OtherAgent, "", "contents:read").AccessToken
	for i := range 2 {
		if _, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok)); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok))
	var e *guard.Error
	if !errors.As(err, &e) || e.Reason != guard.ReasonThrottled || e.Status != http.StatusTooManyRequests || e.RetryAfter <= 0 {
		t.Fatalf("past the burst: %v, want 429 %s with Retry-After", err, guard.ReasonThrottled)
	}
	if _, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", otherTok)); err != nil {
		t.Fatalf("another agent while the first is throttled: %v", err)
	}
}

// The attack of issue 10, item 7: paths that a servlet container or a
// naive URL builder would read as somewhere else are within nothing.
func TestRequireActionAtPathRefusesAmbiguousPaths(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-paths", nil)
	tok := h.MintWith(ssftest.Agent, "", broker.SubmitInput{Scopes: []string{"contents:read"}, Details: []broker.AuthorizationDetail{{
		Type: broker.TaskDetailType, Actions: []string{"contents:read"}, Locations: []string{ssftest.Resource + "/repos/acme"}}}}).AccessToken
	handler := g.RequireActionAtPath("contents:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for path, want := range map[string]int{
		"/repos/acme":                  http.StatusNoContent,
		"/repos/acme/issues/7":         http.StatusNoContent,
		"/repos/acme-evil":             http.StatusForbidden,
		"/repos/acme/..;/admin":        http.StatusBadRequest,
		"/repos/acme/%2e%2e/admin":     http.StatusBadRequest,
		"/repos/acme/%252e%252e/admin": http.StatusBadRequest,
		"/repos/acme//other.example/x": http.StatusBadRequest,
		"/repos/acme/a%5cb":            http.StatusBadRequest,
		"/repos/acme/%EF%BC%8E":        http.StatusBadRequest, // a full-width dot, encoded
	} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, request("GET", path, "Bearer", tok))
		if rec.Code != want {
			t.Errorf("GET %s: %d %s, want %d", path, rec.Code, rec.Header().Get("WWW-Authenticate"), want)
		}
	}
}

// FuzzAllowsAgreesWithWrit: the guard's Allows and writ's CheckLocation
// give the same answer on every input.
func FuzzAllowsAgreesWithWrit(f *testing.F) {
	for _, s := range []string{"https://api.example/repos/acme/x", "https://api.example/repos/acme/..;/admin",
		"https://api.example/repos/acme/%252e", "https://api.example/repos/acme//x", "https://api.example/repos/acme\\x"} {
		f.Add(s, "https://api.example/repos/acme")
	}
	f.Fuzz(func(t *testing.T, loc, granted string) {
		p := &guard.Principal{Scopes: []string{"a"}, Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Actions: []string{"a"}, Locations: []string{granted}}}}
		_, err := broker.CheckLocation(loc, granted)
		if got := p.Allows(loc, "a"); got != (err == nil) {
			t.Fatalf("Allows(%q) within %q = %v, CheckLocation says %v", loc, granted, got, err)
		}
	})
}

// pollGate holds the guard's polls of every stream but one until opened,
// so a test can look at the guard while a new stream's backlog is still
// on its way.
type pollGate struct {
	next   http.RoundTripper
	keep   atomic.Pointer[string] // the stream whose polls pass
	closed atomic.Bool
	open   chan struct{}
	held   atomic.Int64
}

func (p *pollGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if keep := p.keep.Load(); p.closed.Load() && keep != nil && strings.Contains(r.URL.Path, "/ssf/poll/") && !strings.HasSuffix(r.URL.Path, "/"+*keep) {
		p.held.Add(1)
		select {
		case <-p.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return p.next.RoundTrip(r)
}

// The attack of issue 10, item 6: writ loses the guard's stream (404); the
// guard re-subscribes, and must refuse tokens until the new stream's
// backlog (which may hold the revocation it missed) is applied.
func TestResubscribingGuardRefusesUntilCaughtUp(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 100 * time.Millisecond}})
	gate := &pollGate{next: h.Client("rs-resub").Transport, open: make(chan struct{})}
	g := startGuard(t, h, "rs-resub", func(c *guard.Config) { c.HTTPClient = &http.Client{Transport: gate} })
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	check := func() error {
		_, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok))
		return err
	}
	if err := check(); err != nil {
		t.Fatalf("before: %v", err)
	}
	streams := h.Transmitter.Streams()
	if len(streams) != 1 {
		t.Fatalf("%d streams", len(streams))
	}
	first := streams[0].ID
	gate.keep.Store(&first)
	gate.closed.Store(true)
	// writ loses the stream: the guard's next poll is answered 404.
	code, body := deleteStream(t, h, "rs-resub", first)
	if code != http.StatusNoContent {
		t.Fatalf("delete stream: %d %s", code, body)
	}
	// The guard has subscribed again and its first poll of the new stream
	// is held: it must not be ready, and must refuse the token.
	waitUntil(t, func() bool { return gate.held.Load() > 0 })
	if ok, why := g.Ready(); ok {
		t.Fatal("guard ready while the new stream's backlog is unread")
	} else if !strings.Contains(why, "caught up") {
		t.Errorf("not ready because %q", why)
	}
	var e *guard.Error
	if err := check(); !errors.As(err, &e) || e.Reason != guard.ReasonFeedUnavailable {
		t.Fatalf("token during re-subscription: %v, want %s", err, guard.ReasonFeedUnavailable)
	}
	close(gate.open)
	waitReady(t, g)
	if err := check(); err != nil {
		t.Fatalf("after catching up: %v", err)
	}
}

func deleteStream(t *testing.T, h *ssftest.Harness, receiver, id string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, h.URL+"/ssf/stream?stream_id="+id, nil)
	resp, err := h.Client(receiver).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
