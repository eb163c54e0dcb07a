package guard_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// TestFeedAccessTokenFallsBack: a guard asked to use a feed access token
// at a writ that grants none (no authorization server metadata here)
// authenticates each call with a client assertion instead, and works.
// The token path itself is tested against writ's real token endpoint in
// broker/load (TestGuardFeedAccessToken).
func TestFeedAccessTokenFallsBack(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	var assertions atomic.Int64
	g := startGuard(t, h, "", func(c *guard.Config) {
		c.FeedAccessToken = true
		// ssftest.BearerReceiver takes the Bearer credential as the receiver id.
		c.ClientAssertion = func(context.Context, string) (string, error) {
			assertions.Add(1)
			return "rs-fallback", nil
		}
	})
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	if _, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok.AccessToken)); err != nil {
		t.Fatalf("check: %v", err)
	}
	h.Revoke(tok.Grant.ID, "done")
	waitRefused(t, g, func() *http.Request { return request("GET", "/x", "Bearer", tok.AccessToken) }, guard.ReasonRevoked)
	if n := assertions.Load(); n < 3 {
		t.Errorf("%d client assertions made; the fallback should make one per call", n)
	}
}
