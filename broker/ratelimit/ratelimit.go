// Package ratelimit holds one token bucket per client, built on
// golang.org/x/time/rate. writ uses it for client authentication and task
// submissions; the guard for the clients presenting tokens. It depends on
// nothing in writ, so the guard SDK can use it too.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a rate and burst. A zero Limit (rate 0) allows nothing: callers
// fill defaults before building a Limiter.
type Limit struct {
	PerSecond float64 // sustained events per second
	Burst     int     // events allowed at once
}

// maxIdle is how many buckets a Limiter keeps before it forgets those that
// are full again (a full bucket is the same as no bucket).
const maxIdle = 4096

// Limiter is a token bucket per client. It is safe for concurrent use.
type Limiter struct {
	def   Limit
	limit func(client string) (Limit, bool) // per-client override

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim *rate.Limiter
	of  Limit
}

// New returns a Limiter giving every client def, unless limitFor (which may
// be nil) returns a limit of its own for a client.
func New(def Limit, limitFor func(client string) (Limit, bool)) *Limiter {
	return &Limiter{def: def, limit: limitFor, buckets: make(map[string]*bucket)}
}

// Allow takes one event from client's bucket at now. When the bucket is
// empty it takes nothing and says how long until one event is allowed, for
// a Retry-After.
func (l *Limiter) Allow(client string, now time.Time) (ok bool, retryAfter time.Duration) {
	want := l.limitOf(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil || b.of != want {
		// A new client, or its limit changed (a configuration reload).
		if len(l.buckets) >= maxIdle {
			l.forgetFull(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(want.PerSecond), want.Burst), of: want}
		l.buckets[client] = b
	}
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		// Burst 0: never allowed.
		return false, time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Peek reports whether client's bucket holds an event at now, taking
// nothing, and if not how long until it does. It lets a caller refuse
// before doing expensive work whose end takes the event with Allow.
func (l *Limiter) Peek(client string, now time.Time) (ok bool, retryAfter time.Duration) {
	want := l.limitOf(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil || b.of != want {
		return want.Burst > 0, 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	if want.PerSecond <= 0 {
		return false, time.Duration(math.MaxInt64)
	}
	return false, time.Duration((1 - tokens) / want.PerSecond * float64(time.Second))
}

func (l *Limiter) limitOf(client string) Limit {
	if l.limit != nil {
		if c, ok := l.limit(client); ok {
			return c
		}
	}
	return l.def
}

// forgetFull drops the buckets that have refilled: they allow exactly what
// a new bucket would.
func (l *Limiter) forgetFull(now time.Time) {
	for c, b := range l.buckets {
		if b.lim.TokensAt(now) >= float64(b.of.Burst) {
			delete(l.buckets, c)
		}
	}
}

// Len returns how many buckets are held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
