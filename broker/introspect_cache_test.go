package broker_test

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
)

// coldIntrospect answers as a service that never saw the token would: a
// new Service over the same store, with empty caches, on the same clock.
func coldIntrospect(t *testing.T, h *harness, raw string) *broker.Introspection {
	t.Helper()
	svc, err := broker.New(h.ctx, testConfig(), h.st, broker.Options{Issuer: "https://writ.example", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	in, err := svc.Introspect(h.ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestIntrospectionCacheAttacks: after a token has been introspected (its
// signature, claims and grant cached), every way it can stop being active
// is reported exactly as a service that never saw it reports it.
func TestIntrospectionCacheAttacks(t *testing.T) {
	tests := []struct {
		name   string
		act    func(t *testing.T, h *harness, tok *broker.IssuedToken)
		active bool // what the cold service answers
	}{
		{"grant revoked", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.Revoke(h.ctx, op, tok.Grant.ID, "leaked"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"agent revoked", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.RevokeAgent(h.ctx, op, "release-bot", "compromised", false); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"agent quarantined", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.RevokeAgent(h.ctx, op, "release-bot", "compromised", true); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"revoke-all", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.RevokeAll(h.ctx, op, "host compromised", false); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"revoke-all and freeze", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.RevokeAll(h.ctx, op, "host compromised", true); err != nil {
				t.Fatal(err)
			}
		}, false},
		// A freeze stops issuance; tokens already minted stay as they are.
		{"issuer frozen", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if err := h.svc.Freeze(h.ctx, op, "incident"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"completed by its agent", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if err := h.svc.Complete(h.ctx, "release-bot", tok.JTI); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"narrowed", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			terms := tok.Grant.Terms.Clone()
			terms.Scopes = []string{"contents:read"}
			terms.TTL = 5 * time.Minute
			if _, err := h.svc.NarrowGrant(h.ctx, op, tok.Grant.ID, terms, "read is enough"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"token expired", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			h.clock.Advance(tok.ExpiresIn)
		}, false},
		{"grant expired by the sweep", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			h.clock.Advance(tok.ExpiresIn)
			if _, err := h.svc.ExpireDue(h.ctx); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"uses flushed", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if err := h.svc.FlushUsage(h.ctx); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"signing key rotated out", func(t *testing.T, h *harness, tok *broker.IssuedToken) {
			if _, err := h.svc.RotateKeys(h.ctx, op, jose.ES256); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(2 * time.Hour) // past MaxTTL and the key's retention
			if err := broker.PruneKeys(h.svc, h.ctx); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tok := h.redeem("release-bot", approved(h))
			for range 2 { // the second answer comes from the caches
				if !active(t, h, tok.AccessToken) {
					t.Fatal("a fresh token is inactive")
				}
			}
			tt.act(t, h, tok)
			warm, err := h.svc.Introspect(h.ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			cold := coldIntrospect(t, h, tok.AccessToken)
			if cold.Active != tt.active {
				t.Fatalf("a service that never saw the token says active=%v (%s), want %v", cold.Active, cold.Why, tt.active)
			}
			if warm.Active != cold.Active || warm.Why != cold.Why || warm.JTI != cold.JTI {
				t.Errorf("warm cache: active=%v why %q jti %q; cold: active=%v why %q jti %q",
					warm.Active, warm.Why, warm.JTI, cold.Active, cold.Why, cold.JTI)
			}
			if !reflect.DeepEqual(warm.Claims, cold.Claims) {
				t.Errorf("warm cache claims %+v, cold %+v", warm.Claims, cold.Claims)
			}
			if !reflect.DeepEqual(warm.Grant, cold.Grant) {
				t.Errorf("warm cache grant %+v, cold %+v", warm.Grant, cold.Grant)
			}
		})
	}
}

// TestIntrospectionAfterRevokeReturns: while resource servers introspect a
// token as fast as they can, every introspection that starts after Revoke
// has returned reports it inactive.
func TestIntrospectionAfterRevokeReturns(t *testing.T) {
	h := newHarness(t)
	tok := h.redeem("release-bot", approved(h))
	var revoked atomic.Bool
	var wrong atomic.Int64
	var calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load()
				in, err := h.svc.Introspect(context.Background(), tok.AccessToken)
				if err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				if after && in.Active {
					wrong.Add(1)
				}
			}
		})
	}
	waitFor(t, func() bool { return calls.Load() > 100 })
	if _, err := h.svc.Revoke(h.ctx, op, tok.Grant.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	n := calls.Load()
	waitFor(t, func() bool { return calls.Load() > n+100 })
	close(stop)
	wg.Wait()
	if w := wrong.Load(); w > 0 {
		t.Errorf("%d introspections started after the revocation returned said active", w)
	}
}

// waitFor waits until cond holds, failing the test after ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClientTokenCacheAttacks: a resource server's client token, once
// verified and cached, is refused exactly as a service that never saw it
// refuses it, once it has expired or its signing key is gone.
func TestClientTokenCacheAttacks(t *testing.T) {
	tests := []struct {
		name string
		act  func(t *testing.T, h *harness)
	}{
		{"expired", func(t *testing.T, h *harness) { h.clock.Advance(broker.ClientTokenLifetime) }},
		{"signing key rotated out", func(t *testing.T, h *harness) {
			if _, err := h.svc.RotateKeys(h.ctx, op, jose.ES256); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(2 * time.Hour) // past MaxTTL and the key's retention
			if err := broker.PruneKeys(h.svc, h.ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			raw, _, err := h.svc.MintClientToken("https://git.example/rs", []string{broker.ScopeIntrospect})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := h.svc.VerifyClientToken(raw); err != nil {
					t.Fatalf("a fresh client token: %v", err)
				}
			}
			tt.act(t, h)
			_, warm := h.svc.VerifyClientToken(raw)
			cold, err := broker.New(h.ctx, testConfig(), h.st, broker.Options{Issuer: "https://writ.example", Now: h.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			_, coldErr := cold.VerifyClientToken(raw)
			if warm == nil || coldErr == nil || warm.Error() != coldErr.Error() {
				t.Errorf("warm cache: %v; cold: %v", warm, coldErr)
			}
		})
	}
}
