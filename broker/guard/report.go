package guard

import (
	"context"
	"hash/maphash"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/writhq/writ/wire/ssfwire"
)

// reportShards spreads use counting over locks, so concurrent requests
// rarely share one.
const reportShards = 16

// reporter counts the uses of each grant's tokens until the next report to
// writ. It is bounded: past maxPending grants in a shard, new grants'
// uses are dropped and counted as dropped.
type reporter struct {
	seed       maphash.Seed
	maxPending int
	shards     [reportShards]reportShard
	dropped    atomic.Int64
	sent       atomic.Int64
	failed     atomic.Int64
}

type reportShard struct {
	mu sync.Mutex
	m  map[string]*useCount
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

type useCount struct {
	accepted, refused                                      int64
	firstAccepted, lastAccepted, firstRefused, lastRefused int64
	endpoints                                              []string
	reasons                                                map[string]int64
}

func newReporter(maxPending int) *reporter {
	r := &reporter{seed: maphash.MakeSeed(), maxPending: max(1, maxPending/reportShards)}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*useCount)
	}
	return r
}

// record counts one use of grant sid at now (Unix milliseconds), at
// endpoint (method and path), refused for reason ("" when accepted).
func (r *reporter) record(sid string, accepted bool, now int64, endpoint, reason string) {
	s := &r.shards[maphash.String(r.seed, sid)%reportShards]
	s.mu.Lock()
	c, ok := s.m[sid]
	if !ok {
		if len(s.m) >= r.maxPending {
			s.mu.Unlock()
			r.dropped.Add(1)
			return
		}
		c = &useCount{}
		s.m[sid] = c
	}
	if accepted {
		c.accepted++
		c.firstAccepted = firstMillis(c.firstAccepted, now)
		c.lastAccepted = max(c.lastAccepted, now)
	} else {
		c.refused++
		c.firstRefused = firstMillis(c.firstRefused, now)
		c.lastRefused = max(c.lastRefused, now)
		if c.reasons == nil {
			c.reasons = make(map[string]int64, 1)
		}
		if _, ok := c.reasons[reason]; ok || len(c.reasons) < ssfwire.MaxUseReasons {
			c.reasons[reason]++
		}
	}
	if len(endpoint) > 200 {
		endpoint = endpoint[:200]
	}
	if len(c.endpoints) < ssfwire.MaxUseEndpoints && !slices.Contains(c.endpoints, endpoint) && utf8.ValidString(endpoint) {
		c.endpoints = append(c.endpoints, endpoint)
	}
	s.mu.Unlock()
}

// take returns and forgets the counts.
func (r *reporter) take() []ssfwire.GrantUse {
	var out []ssfwire.GrantUse
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for sid, c := range s.m {
			out = append(out, ssfwire.GrantUse{SID: sid, Accepted: c.accepted, Refused: c.refused,
				FirstAccepted: c.firstAccepted, LastAccepted: c.lastAccepted,
				FirstRefused: c.firstRefused, LastRefused: c.lastRefused,
				Endpoints: c.endpoints, Reasons: c.reasons})
		}
		clear(s.m)
		s.mu.Unlock()
	}
	return out
}

// flushUses sends the counted uses to writ's usage endpoint. Uses are
// evidence for the console, not authority: a report that fails is dropped
// (and counted) rather than kept without bound.
func (g *Guard) flushUses(ctx context.Context) {
	uses := g.reports.take()
	if len(uses) == 0 {
		return
	}
	u := g.usageURL.Load()
	if u == nil {
		g.reports.failed.Add(int64(len(uses)))
		return
	}
	for len(uses) > 0 {
		n := min(len(uses), ssfwire.MaxUsageEntries)
		status, err := g.callJSON(ctx, http.MethodPost, *u, ssfwire.UsageReport{Uses: uses[:n]}, nil)
		if err != nil || status != http.StatusNoContent {
			g.reports.failed.Add(int64(len(uses)))
			if ctx.Err() == nil {
				g.log.Debug("usage report failed", "status", status, "err", err)
			}
			return
		}
		g.reports.sent.Add(int64(n))
		uses = uses[n:]
	}
}

// firstMillis is the earlier of a first-use time (0: none yet) and now.
func firstMillis(first, now int64) int64 {
	if first == 0 {
		return now
	}
	return min(first, now)
}
