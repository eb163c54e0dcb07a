package broker

import (
	"sync"
	"time"

	"github.com/writhq/writ/broker/ratelimit"
)

// limiter is a token bucket per agent for task submissions, so a flood from
// one agent cannot bury the operator's queue. It is golang.org/x/time/rate
// underneath (broker/ratelimit); each agent's rate and burst come from its
// configuration, then the configuration's limits, then the Service's
// options.
type limiter struct{ l *ratelimit.Limiter }

func newLimiter(rate float64, burst int, limitFor func(agent string) (ratelimit.Limit, bool)) *limiter {
	return &limiter{l: ratelimit.New(ratelimit.Limit{PerSecond: rate, Burst: burst}, limitFor)}
}

// allow takes one token from the agent's bucket, reporting whether there was one.
func (l *limiter) allow(agent string, now time.Time) bool {
	ok, _ := l.l.Allow(agent, now)
	return ok
}

// peek reports whether the agent's bucket has a token, taking none, and
// if not how long until it has.
func (l *limiter) peek(agent string, now time.Time) (bool, time.Duration) {
	return l.l.Peek(agent, now)
}

// pollTracker remembers when each request was last polled, in memory: a
// durable write per poll would cost an fsync for nothing. After a restart
// the first poll is simply not throttled.
type pollTracker struct {
	mu   sync.Mutex
	last map[string]pollState
}

type pollState struct {
	at       time.Time
	interval time.Duration
}

func newPollTracker() *pollTracker { return &pollTracker{last: make(map[string]pollState)} }

// poll records a poll of id and returns the interval the agent must now
// keep and whether this poll came too soon (slow_down: the interval grows
// by 5 s, as CIBA §11 requires of the client).
func (p *pollTracker) poll(id string, interval time.Duration, now time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.last[id]
	if !ok {
		p.last[id] = pollState{at: now, interval: interval}
		return interval, false
	}
	// A little slack for network jitter between the agent's timer and ours.
	tooSoon := now.Sub(st.at) < st.interval-st.interval/10
	if tooSoon {
		st.interval += 5 * time.Second
	}
	st.at = now
	p.last[id] = st
	return st.interval, tooSoon
}

func (p *pollTracker) forget(id string) {
	p.mu.Lock()
	delete(p.last, id)
	p.mu.Unlock()
}

// prune forgets requests last polled before cutoff: they were decided,
// expired or abandoned, and a long shift must not accumulate them.
func (p *pollTracker) prune(cutoff time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, st := range p.last {
		if st.at.Before(cutoff) {
			delete(p.last, id)
		}
	}
}
