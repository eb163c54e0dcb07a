package broker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store"
)

// durableHarness is a harness over a store that fsyncs every commit, as in
// production.
func durableHarness(b *testing.B) *harness {
	st, err := store.Open(filepath.Join(b.TempDir(), "writ.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{Issuer: "https://writ.example",
		SubmitRate: 1e9, SubmitBurst: 1e9, MaxPendingPerAgent: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	return &harness{t: b, svc: svc, st: st, clock: newClock(), ctx: context.Background()}
}

// BenchmarkFullCycle is request → approval → DPoP-bound token, every step
// durably committed, with concurrent agents so group commit can work.
func BenchmarkFullCycle(b *testing.B) {
	h := durableHarness(b)
	in := broker.SubmitInput{LoginHint: "oncall", Intent: "bench", Scopes: []string{"contents:read"}, Resource: gitURI}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := h.svc.Submit(h.ctx, "release-bot", in)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.svc.Approve(h.ctx, op, r.ID); err != nil {
				b.Fatal(err)
			}
			if _, err := h.svc.Redeem(h.ctx, "release-bot", r.ID, "jkt"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// BenchmarkIntrospect checks a valid token (verified once, then cached).
func BenchmarkIntrospect(b *testing.B) {
	h := durableHarness(b)
	tok := h.redeem("release-bot", approved(h))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in, err := h.svc.Introspect(h.ctx, tok.AccessToken)
			if err != nil || !in.Active {
				b.Fatal("inactive", err)
			}
		}
	})
}

// BenchmarkRevokeAll revokes everything with 100,000 active grants: one
// durable O(1) write, whatever the number of grants.
func BenchmarkRevokeAll(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			h := durableHarness(b)
			now := time.Now()
			err := h.st.Update(h.ctx, func(tx broker.Tx) error {
				for i := range n {
					g := &broker.Grant{ID: fmt.Sprintf("grant-%08d", i), AgentID: "release-bot", State: broker.GrantActive,
						Terms:     broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI, TTL: time.Hour},
						CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
					if err := tx.PutGrant(g); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.svc.RevokeAll(h.ctx, op, "bench", false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRevokeGrant is one durable grant revocation.
func BenchmarkRevokeGrant(b *testing.B) {
	h := durableHarness(b)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = h.approve(h.submit("release-bot", "contents:read").ID).ID
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.svc.Revoke(h.ctx, op, ids[i], "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
