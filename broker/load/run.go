package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options say where and how hard to drive writ.
type Options struct {
	// Issuer is writ's public URL (its issuer), on loopback.
	Issuer string
	// Setup is the configuration the server runs with, with the keys.
	Setup *Setup
	// Clients is how many concurrent clients run (default 64).
	Clients int
	// Duration is how long each scenario runs (default 10 s).
	Duration time.Duration
	// PresignRate is how many full cycles per second the client
	// assertions and DPoP proofs are signed for before the cycle scenario
	// starts, so that the load process's signing does not compete with
	// the server for the cores while it is measured (default 6,000, twice
	// the budget). The scenario ends early, Exhausted, if they run out;
	// Setup needs AgentsFor(PresignRate, Duration) agents.
	PresignRate int
	// Progress receives a line per second while a scenario runs; nil
	// means none.
	Progress io.Writer
	// HTTPClient makes the requests; nil means one sized for Clients.
	HTTPClient *http.Client
	// Target names the provider under load in results: "writ" (the
	// default) or "oidc-provider".
	Target string
	// Submit holds the backchannel authentication parameters of a full
	// cycle besides client authentication; nil means writ's (the load
	// scope at the load resource, login_hint the approver queue).
	Submit url.Values
	// AssertRate is how many introspections per second are presigned,
	// each with a client assertion of its own (default 12,000).
	AssertRate int
	// ServerPID, when set, is the server's process: its CPU time and
	// memory are read from /proc at the start and end of the measurement.
	ServerPID int
}

func (o Options) withDefaults() Options {
	if o.Clients <= 0 {
		o.Clients = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.PresignRate <= 0 {
		o.PresignRate = 6000
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: o.Clients * 2, MaxIdleConnsPerHost: o.Clients * 2, IdleConnTimeout: time.Minute}}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Target == "" {
		o.Target = "writ"
	}
	if o.Submit == nil {
		o.Submit = url.Values{"scope": {Scope}, "resource": {ResourceURI}, "login_hint": {Queue},
			"binding_message": {"writ load: one full cycle"}}
	}
	if o.AssertRate <= 0 {
		o.AssertRate = 12000
	}
	return o
}

// Result is what one scenario measured. Latencies are whole operations
// as the client saw them: one request for introspection, the request and
// the token redemption for a cycle.
type Result struct {
	Scenario string
	// Target is the provider measured: writ or oidc-provider.
	Target  string
	Clients int
	// Count is the operations that succeeded; Errors those that did not
	// (Throttled of them refused by the server's per-agent limit).
	Count, Errors, Throttled int
	// Exhausted says the scenario ended before its duration because
	// every presigned cycle was used: the rate is then a lower bound.
	Exhausted bool
	Elapsed   time.Duration
	P50       time.Duration
	P90       time.Duration
	P95       time.Duration
	P99       time.Duration
	Max       time.Duration
	// FirstError is the first failure seen, to say why there were errors.
	FirstError error
	// Server is what the server process used during the measurement,
	// when Options.ServerPID was set; ServerErr says why not otherwise.
	Server    *ServerUse
	ServerErr error
	// ClientCPU is the CPU time this process (the load generator) used
	// while measuring, to say how much of the machine it took.
	ClientCPU time.Duration
}

// ServerUse is the server's CPU time and memory over one measurement.
type ServerUse struct {
	// CPU is the user and system time the server used while measured.
	CPU time.Duration
	// RSS is its resident set at the end, AnonRSS the part of it that is
	// not files mapped in (the store); PeakRSS the highest RSS since the
	// process started.
	RSS, AnonRSS, PeakRSS int64
	// WriteBytes is what it wrote to storage while measured; -1 unknown.
	WriteBytes int64
}

// CPUPerOp is the server's CPU time per successful operation.
func (r Result) CPUPerOp() time.Duration {
	if r.Server == nil || r.Count == 0 {
		return 0
	}
	return r.Server.CPU / time.Duration(r.Count)
}

// Rate is the successful operations per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Count) / r.Elapsed.Seconds()
}

// errExhausted ends a worker: there is no more work signed for it.
var errExhausted = errors.New("no presigned work left")

// errThrottled marks a slow_down refusal: a rate limit (per-agent
// submissions, per-client authentication) or a client's replay-cache
// quota; the wrapped description says which.
var errThrottled = errors.New("slow_down")

// drive runs op from o.Clients workers until o.Duration has passed (an
// operation started before then finishes), ctx ends or op says
// errExhausted, reporting progress
// each second. op gets the worker's number and the operation's sequence
// number across workers.
func drive(ctx context.Context, o Options, scenario string, op func(ctx context.Context, worker int, seq int64) error) Result {
	var (
		seq, done, failed, throttled atomic.Int64
		exhausted                    atomic.Bool
		firstErr                     atomic.Pointer[error]
		mu                           sync.Mutex
		all                          []time.Duration
	)
	var before ProcSample
	var procErr error
	if o.ServerPID > 0 {
		before, procErr = ReadProc(o.ServerPID)
	}
	self, selfErr := ReadProc(os.Getpid())
	start := time.Now()
	deadline := start.Add(o.Duration)
	stopProgress := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				n := done.Load()
				fmt.Fprintf(o.Progress, "%-17s %s %3.0fs/%.0fs  %8.0f/s  done %d  errors %d\n", o.Target+" "+scenario,
					bar(now.Sub(start), o.Duration), now.Sub(start).Seconds(), o.Duration.Seconds(),
					float64(n-last)/now.Sub(lastAt).Seconds(), n, failed.Load())
				last, lastAt = n, now
			}
		}
	})
	var workers sync.WaitGroup
	for w := range o.Clients {
		workers.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				err := op(ctx, w, seq.Add(1)-1)
				if errors.Is(err, errExhausted) {
					exhausted.Store(true)
					break
				}
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted: neither a success nor a failure
					}
					failed.Add(1)
					if errors.Is(err, errThrottled) {
						throttled.Add(1)
					}
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				mine = append(mine, time.Since(t0))
				done.Add(1)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	workers.Wait()
	elapsed := time.Since(start)
	var clientCPU time.Duration
	if selfErr == nil {
		if now, err := ReadProc(os.Getpid()); err == nil {
			clientCPU = now.CPU - self.CPU
		}
	}
	var server *ServerUse
	if o.ServerPID > 0 && procErr == nil {
		var after ProcSample
		if after, procErr = ReadProc(o.ServerPID); procErr == nil {
			server = &ServerUse{CPU: after.CPU - before.CPU, RSS: after.RSS, AnonRSS: after.Anon, PeakRSS: after.HWM, WriteBytes: -1}
			if before.WriteBytes >= 0 && after.WriteBytes >= before.WriteBytes {
				server.WriteBytes = after.WriteBytes - before.WriteBytes
			}
		}
	}
	close(stopProgress)
	progress.Wait()
	r := Result{Scenario: scenario, Target: o.Target, Server: server, ServerErr: procErr, ClientCPU: clientCPU, Clients: o.Clients, Count: len(all), Errors: int(failed.Load()),
		Throttled: int(throttled.Load()), Exhausted: exhausted.Load(), Elapsed: elapsed}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	if len(all) > 0 {
		slices.Sort(all)
		at := func(q float64) time.Duration { return all[int(q*float64(len(all)-1))] }
		r.P50, r.P90, r.P95, r.P99, r.Max = at(0.50), at(0.90), at(0.95), at(0.99), all[len(all)-1]
	}
	return r
}

// bar draws how much of d has passed as a bar of 20 cells.
func bar(passed, d time.Duration) string {
	const cells = 20
	n := 0
	if d > 0 {
		n = min(cells, int(cells*passed/d))
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", cells-n) + "]"
}
