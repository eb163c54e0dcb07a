package opapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// TestFaultIdPUnreachableAtExchange (issue 12, faults): with the identity
// provider down, an operator token already issued keeps working until its
// own expiry (it never outlives the ID token), a server that cannot reach
// the provider refuses to exchange an ID token with 503 saying why, and
// once the operator token has expired nothing is approved on the stale
// identity: the approval is refused and the request stays pending.
func TestFaultIdPUnreachableAtExchange(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	omar := h.Client("omar", nil) // exchanged while the provider was up
	dana := h.SignIn("dana", "")  // an ID token, not yet exchanged
	if err := h.IDP.Close(); err != nil {
		t.Fatal(err)
	}
	// A restarted server has not fetched the provider's keys yet.
	h.Restart()

	// Dana's exchange needs the provider: refused, retryable, saying why.
	c, err := client.New(client.Options{Server: h.URL, RetryFor: time.Millisecond,
		IDToken: func(context.Context) (string, error) { return dana.IDToken(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = c.SignIn(t.Context())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Body.Error != "temporarily_unavailable" ||
		broker.ErrorCode(err) != broker.EUNAVAILABLE || !strings.Contains(ae.Body.Description, h.IDP.Issuer()) {
		t.Fatalf("exchange with the provider down: %v, want 503 temporarily_unavailable (%s) naming the identity provider", err, broker.EUNAVAILABLE)
	}

	// Omar's operator token is still good: he approves without the provider.
	first := h.Submit("read the changelog")
	if _, err := omar.Approve(t.Context(), broker.Operator{}, first.ID); err != nil {
		t.Fatalf("approve with a live operator token while the provider is down: %v", err)
	}

	// Past the operator token's expiry the identity must be checked again:
	// it cannot be, so nothing is approved.
	h.Clock.Advance(opapi.DefaultTokenLifetime + time.Minute)
	second := h.Submit("read the release notes")
	if _, err := omar.Approve(t.Context(), broker.Operator{}, second.ID); err == nil {
		t.Fatal("approved on an identity that could not be checked again")
	}
	r, err := h.Svc.Request(t.Context(), second.ID)
	if err != nil || r.State != broker.RequestPending {
		t.Fatalf("request %v (%v), want it still pending", r, err)
	}
}
