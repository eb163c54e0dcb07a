package guard_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ratelimit"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// startGuards starts n guards, each with its own stream, and waits for all
// of them to catch up.
func startGuards(tb testing.TB, h *ssftest.Harness, n int, mod func(*guard.Config)) []*guard.Guard {
	tb.Helper()
	guards := make([]*guard.Guard, n)
	for i := range guards {
		guards[i] = newGuard(tb, h, fmt.Sprintf("rs-%d", i), mod)
		runGuard(tb, guards[i])
	}
	for _, g := range guards {
		waitReady(tb, g)
	}
	return guards
}

// refusedBy checks tok at each guard in turn until it refuses it as
// revoked, and returns when the last one did; it gives up at deadline.
// Waiting on one guard at a time keeps the measuring from taking the CPU
// the feed needs: the last refusal is what counts.
func refusedBy(guards []*guard.Guard, tok string, deadline time.Time) (time.Time, []int) {
	req := request("GET", "/repos", "Bearer", tok)
	for i, g := range guards {
		for {
			_, err := g.Check(context.Background(), req)
			if e, ok := err.(*guard.Error); ok && e.Reason == guard.ReasonRevoked {
				break
			}
			if time.Now().After(deadline) {
				pending := make([]int, 0, len(guards)-i)
				for j := i; j < len(guards); j++ {
					pending = append(pending, j)
				}
				return time.Now(), pending
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	return time.Now(), nil
}

// TestEndToEnd: 200 guards in one process, each subscribed to the feed over
// loopback; one grant is revoked; every guard refuses its token.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("200 guards")
	}
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	// refusedBy checks each guard in a tight loop while it waits: without
	// the per-agent limit, or a slow feed would have the agent throttled
	// and the check of the other token below refused for that.
	guards := startGuards(t, h, 200, func(c *guard.Config) { c.ClientLimit = ratelimit.Limit{PerSecond: -1} })
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	other := h.Mint(ssftest.Agent, "", "contents:read")
	for i, g := range guards {
		if _, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok.AccessToken)); err != nil {
			t.Fatalf("guard %d refused a live token: %v", i, err)
		}
	}
	h.Revoke(tok.Grant.ID, "agent host may be compromised")
	start := time.Now()
	last, pending := refusedBy(guards, tok.AccessToken, time.Now().Add(60*time.Second))
	if len(pending) > 0 {
		t.Fatalf("%d of %d guards still accept the revoked token after 60s (first: %d)", len(pending), len(guards), pending[0])
	}
	t.Logf("revoke returned → last of %d guards refused: %v", len(guards), last.Sub(start))
	for i, g := range guards {
		if _, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", other.AccessToken)); err != nil {
			t.Errorf("guard %d refused another grant's token: %v", i, err)
		}
	}
	if st := h.Transmitter.Stats(); st.Streams != len(guards) {
		t.Errorf("%d streams for %d guards", st.Streams, len(guards))
	}
}

// BenchmarkRevokeToRefusal measures the time from the revoke call
// returning to the last subscribed guard refusing the token, over loopback
// HTTP with every guard long-polling its own stream.
func BenchmarkRevokeToRefusal(b *testing.B) {
	for _, n := range []int{1, 10, 200, 1000} {
		b.Run(fmt.Sprintf("guards=%d", n), func(b *testing.B) {
			h := ssftest.New(b, ssftest.Options{})
			// Use reports at the default interval, as deployed guards send them.
			guards := startGuards(b, h, n, func(c *guard.Config) { c.ReportInterval = time.Second })
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				tok := h.Mint(ssftest.Agent, "", "contents:read")
				req := request("GET", "/repos", "Bearer", tok.AccessToken)
				for _, g := range guards {
					if _, err := g.Check(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				h.Revoke(tok.Grant.ID, "bench")
				start := time.Now()
				last, pending := refusedBy(guards, tok.AccessToken, start.Add(60*time.Second))
				if len(pending) > 0 {
					b.Fatalf("%d guards still accept after 60s", len(pending))
				}
				lat = append(lat, last.Sub(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// benchGuard configures a benchmark's guard: uses reported each second,
// and a per-agent limit so high that one agent's loop never reaches it, so
// the limiter's cost is measured but never its refusal.
func benchGuard(c *guard.Config) {
	c.ReportInterval = time.Second
	c.ClientLimit = ratelimit.Limit{PerSecond: 1e9, Burst: 1e9}
}

// BenchmarkCheckCached is the hot path: a token the guard has verified
// before, under the Bearer scheme.
func BenchmarkCheckCached(b *testing.B) {
	h := ssftest.New(b, ssftest.Options{})
	g := startGuard(b, h, "rs-bench", benchGuard)
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	if _, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := request("GET", "/repos", "Bearer", tok)
		ctx := context.Background()
		for pb.Next() {
			if _, err := g.Check(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCheckCachedDPoP adds the DPoP proof every request must carry:
// one signature verification per request.
func BenchmarkCheckCachedDPoP(b *testing.B) {
	h := ssftest.New(b, ssftest.Options{})
	g := startGuard(b, h, "rs-bench", func(c *guard.Config) {
		benchGuard(c)
		// One key sends every proof: a replay cache whose per-key quota
		// holds them all, so the benchmark measures checks, not refusals.
		c.DPoP = &dpop.Verifier{Replay: dpop.NewReplayCacheQuota(1<<21, 1<<21)}
	})
	signer := newSigner(b)
	tok := h.Mint(ssftest.Agent, signer.JKT(), "contents:read").AccessToken
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = request("GET", "/repos", "DPoP", tok, proof(b, signer, "GET", "/repos", tok))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range reqs {
		if _, err := g.Check(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckNewToken is a token the guard has not seen: parse, one
// signature verification, claims.
func BenchmarkCheckNewToken(b *testing.B) {
	h := ssftest.New(b, ssftest.Options{})
	g := startGuard(b, h, "rs-bench", func(c *guard.Config) { benchGuard(c); c.MaxCachedTokens = 1 << 22 })
	base := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		tok := forge(b, h, base, "at+jwt", func(m map[string]any) { m["jti"] = fmt.Sprintf("bench-%d", i) })
		reqs[i] = request("GET", "/repos", "Bearer", tok)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, r := range reqs {
		if _, err := g.Check(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}
