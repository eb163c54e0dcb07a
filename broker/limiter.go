package broker

import (
	"sync"
	"time"
)

// limiter is a token bucket per agent for task submissions, so a flood from
// one agent cannot bury the operator's queue.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	b     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), b: make(map[string]*bucket)}
}

// allow takes one token from the agent's bucket, reporting whether there was one.
func (l *limiter) allow(agent string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.b[agent]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.b[agent] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
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
