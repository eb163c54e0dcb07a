package guard_test

import (
	"context"
	"testing"
	"time"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// TestRevocationsChanged: the channel is closed when, and only when, the
// feed changes what the guard refuses, and a check then refuses the
// revoked token without the caller polling.
func TestRevocationsChanged(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	g := startGuard(t, h, "rs-notify", nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	check := func() error {
		_, err := g.Check(context.Background(), request("GET", "/x", "Bearer", tok.AccessToken))
		return err
	}
	gen, changed := g.RevocationsChanged()
	if err := check(); err != nil {
		t.Fatalf("a live token: %v", err)
	}
	select {
	case <-changed:
		t.Fatal("changed before anything was revoked")
	default:
	}
	if again, _ := g.RevocationsChanged(); again != gen {
		t.Fatalf("generation moved from %d to %d with nothing revoked", gen, again)
	}

	h.Revoke(tok.Grant.ID, "done")
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("not told of the revocation within 30s")
	}
	next, nextChanged := g.RevocationsChanged()
	if next == gen {
		t.Error("the generation did not move with the revocation")
	}
	if e, ok := check().(*guard.Error); !ok || e.Reason != guard.ReasonRevoked {
		t.Errorf("after the change: %v, want refused as revoked", check())
	}
	select {
	case <-nextChanged:
		t.Error("the new channel is already closed")
	default:
	}
}
