package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ratelimit"
)

// Benchmarks of the agent API over loopback HTTP with concurrent clients.
// Client-side signing (assertions, proofs) happens before the timer
// starts, so the numbers are the server's (and loopback's) cost. Each
// reports p50 and p99 request latency beside ns/op; run with -cpu to
// change the number of cores.

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512}}

// benchEnv is an env without rate limits, so the benchmark measures the
// work and not the throttle.
func benchEnv(b *testing.B) *env {
	return newEnv(b, envOptions{broker: func(o *broker.Options) {
		o.SubmitRate, o.SubmitBurst, o.MaxPendingPerAgent = 1e9, 1<<30, 1<<30
		o.PollInterval = time.Nanosecond
	}, api: func(o *httpapi.Options) {
		// One agent makes every call: a limit it never reaches, so the
		// limiter's cost is measured but never its refusal.
		o.ClientAuth = ratelimit.Limit{PerSecond: 1e9, Burst: 1 << 30}
	}})
}

// presign makes n client assertions for k.
func (e *env) presign(k *agent.Key, n int) chan string {
	ch := make(chan string, n)
	var wg sync.WaitGroup
	per := (n + 7) / 8
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(count int) {
			defer wg.Done()
			for i := 0; i < count; i++ {
				ch <- e.assertion(k, nil)
			}
		}(min(per, n-w*per))
	}
	wg.Wait()
	return ch
}

// latencies collects request durations from parallel workers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	at := func(q float64) float64 { return float64(l.all[int(q*float64(len(l.all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(len(l.all))/b.Elapsed().Seconds(), "req/s")
}

func send(b *testing.B, u string, form url.Values, header ...string) (int, time.Duration) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Error(err)
		return 0, 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

func authed(a string, form url.Values) url.Values {
	form.Set("client_assertion_type", httpapi.AssertionTypeJWTBearer)
	form.Set("client_assertion", a)
	return form
}

// BenchmarkBackchannel: task requests, each durably stored for review.
func BenchmarkBackchannel(b *testing.B) {
	e := benchEnv(b)
	assertions := e.presign(e.release, b.N)
	var lat latencies
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			code, d := send(b, e.url+"/bc-authorize", authed(<-assertions, taskForm("contents:read")))
			if code != http.StatusOK {
				b.Errorf("bc-authorize: %d", code)
				return
			}
			mine = append(mine, d)
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
}

// BenchmarkTokenPoll: polls of pending requests (authorization_pending),
// each with client authentication and a fresh DPoP proof checked.
func BenchmarkTokenPoll(b *testing.B) {
	e := benchEnv(b)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = e.submit(e.release, taskForm("contents:read"))
	}
	assertions := e.presign(e.release, b.N)
	signer := dpopKey(b)
	proofs := make(chan string, b.N)
	for i := 0; i < b.N; i++ {
		p, _ := signer.Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
		proofs <- p
	}
	var next atomic.Int64
	var lat latencies
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			id := ids[next.Add(1)%int64(len(ids))]
			form := authed(<-assertions, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}})
			code, d := send(b, e.url+"/token", form, "DPoP", <-proofs)
			if code != http.StatusBadRequest {
				b.Errorf("poll: %d", code)
				return
			}
			mine = append(mine, d)
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
}

// BenchmarkFullCycle: request → approval → DPoP-bound token, each step
// committed; the approval is a direct call, as the console makes it.
func BenchmarkFullCycle(b *testing.B) {
	e := benchEnv(b)
	assertions := e.presign(e.release, 2*b.N)
	signer := dpopKey(b)
	proofs := make(chan string, b.N)
	for i := 0; i < b.N; i++ {
		p, _ := signer.Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
		proofs <- p
	}
	var lat latencies
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, e.url+"/bc-authorize", strings.NewReader(authed(<-assertions, taskForm("contents:read")).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := e.with(b).do(req)
			if r.Status != http.StatusOK {
				b.Errorf("bc-authorize: %d %s", r.Status, r.Raw)
				return
			}
			id := r.str("auth_req_id")
			if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
				b.Error(err)
				return
			}
			form := authed(<-assertions, url.Values{"grant_type": {httpapi.CIBAGrantType}, "auth_req_id": {id}})
			if code, _ := send(b, e.url+"/token", form, "DPoP", <-proofs); code != http.StatusOK {
				b.Errorf("redeem: %d", code)
				return
			}
			mine = append(mine, time.Since(start))
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
}

// BenchmarkIntrospect: 64 concurrent resource-server clients introspecting
// live tokens, each call authenticated and recorded as a use.
func BenchmarkIntrospect(b *testing.B) {
	e := benchEnv(b)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = e.token("contents:read")
	}
	assertions := e.presign(e.rs, b.N)
	var next atomic.Int64
	var lat latencies
	b.SetParallelism(max(1, 64/runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			tok := tokens[next.Add(1)%int64(len(tokens))]
			code, d := send(b, e.url+"/introspect", authed(<-assertions, url.Values{"token": {tok}}))
			if code != http.StatusOK {
				b.Errorf("introspect: %d", code)
				return
			}
			mine = append(mine, d)
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkIntrospectBearer: as BenchmarkIntrospect, with the resource
// servers authenticating by a client-credentials token (verified once,
// then cached) rather than a fresh client assertion per call.
func BenchmarkIntrospectBearer(b *testing.B) {
	e := benchEnv(b)
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = e.token("contents:read")
	}
	bearer := e.clientToken(e.rs, "introspect").str("access_token")
	var next atomic.Int64
	var lat latencies
	b.SetParallelism(max(1, 64/runtimeProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			tok := tokens[next.Add(1)%int64(len(tokens))]
			code, d := send(b, e.url+"/introspect", url.Values{"token": {tok}}, "Authorization", "Bearer "+bearer)
			if code != http.StatusOK {
				b.Errorf("introspect: %d", code)
				return
			}
			mine = append(mine, d)
		}
		lat.add(mine)
	})
	b.StopTimer()
	lat.report(b)
}
