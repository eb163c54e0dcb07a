package guard

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

var allReasons = []string{
	ReasonNoToken, ReasonBadRequest, ReasonMalformed, ReasonType, ReasonAlg, ReasonUnknownKey, ReasonSignature,
	ReasonIssuer, ReasonAudience, ReasonClaims, ReasonExpired, ReasonNotYetValid, ReasonRevoked, ReasonBoundAsBearer,
	ReasonNotBound, ReasonDPoPRequired, ReasonDPoPProof, ReasonKeyMismatch, ReasonScope, ReasonFeedUnavailable,
	ReasonInactive, ReasonKeys, "internal",
}

type metrics struct {
	accepted atomic.Int64
	refused  map[string]*atomic.Int64 // fixed at init; read without a lock
	other    sync.Map                 // reasons outside allReasons, should any appear
}

func (m *metrics) init() {
	m.refused = make(map[string]*atomic.Int64, len(allReasons))
	for _, r := range allReasons {
		m.refused[r] = new(atomic.Int64)
	}
}

func (m *metrics) refuse(reason string) {
	if c, ok := m.refused[reason]; ok {
		c.Add(1)
		return
	}
	c, _ := m.other.LoadOrStore(reason, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
}

// Stats are a guard's counters and state.
type Stats struct {
	Accepted int64
	Refused  map[string]int64 // by Reason
	// Feed state: whether tokens can be accepted, why not, and how long
	// since writ last answered a poll.
	FeedFresh     bool
	FeedProblem   string
	SinceContact  time.Duration
	FeedVerified  bool  // the stream's verification event arrived
	SETsApplied   int64 // SETs verified and applied
	SETsRefused   int64 // SETs refused and reported in setErrs
	PollErrors    int64
	RevokedGrants int // grants in the deny set
	RevokedTokens int
	RevokedAgents int
	CachedTokens  int64
	JWKSFetches   int64
	UsesReported  int64
	UsesDropped   int64 // dropped because the report buffer was full or a report failed
}

// Stats returns the guard's counters.
func (g *Guard) Stats() Stats {
	now := g.now()
	st := Stats{Accepted: g.metrics.accepted.Load(), Refused: map[string]int64{}}
	for r, c := range g.metrics.refused {
		if n := c.Load(); n > 0 {
			st.Refused[r] = n
		}
	}
	g.metrics.other.Range(func(k, v any) bool {
		st.Refused[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	st.FeedFresh, st.FeedProblem = g.fresh(now)
	if last := g.feed.lastContact.Load(); last != 0 {
		st.SinceContact = now.Sub(time.Unix(0, last))
	}
	st.FeedVerified = g.feed.verified.Load()
	st.SETsApplied, st.SETsRefused, st.PollErrors = g.feed.applied.Load(), g.feed.refusedSETs.Load(), g.feed.pollErrors.Load()
	st.RevokedGrants, st.RevokedTokens, st.RevokedAgents = g.deny.sizes()
	st.CachedTokens = g.cache.len()
	st.JWKSFetches = g.jwks.fetches.Load()
	st.UsesReported = g.reports.sent.Load()
	st.UsesDropped = g.reports.dropped.Load() + g.reports.failed.Load()
	return st
}

// WriteMetrics writes the counters in the Prometheus text exposition
// format, for a resource server's /metrics.
func (g *Guard) WriteMetrics(w io.Writer) error {
	st := g.Stats()
	fresh := 0.0
	if st.FeedFresh {
		fresh = 1
	}
	write := func(name, kind, help string, v float64) error {
		_, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
		return err
	}
	if err := write("writ_guard_accepted_total", "counter", "Requests whose token the guard accepted.", float64(st.Accepted)); err != nil {
		return err
	}
	if _, err := fmt.Fprint(w, "# HELP writ_guard_refused_total Requests the guard refused, by reason.\n# TYPE writ_guard_refused_total counter\n"); err != nil {
		return err
	}
	reasons := make([]string, 0, len(st.Refused))
	for r := range st.Refused {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		if _, err := fmt.Fprintf(w, "writ_guard_refused_total{reason=%q} %d\n", r, st.Refused[r]); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		name, kind, help string
		v                float64
	}{
		{"writ_guard_feed_fresh", "gauge", "1 when the revocation feed is caught up and fresh; 0 when the guard fails closed.", fresh},
		{"writ_guard_feed_contact_age_seconds", "gauge", "Seconds since writ last answered a poll.", st.SinceContact.Seconds()},
		{"writ_guard_sets_applied_total", "counter", "SETs from the revocation feed verified and applied.", float64(st.SETsApplied)},
		{"writ_guard_sets_refused_total", "counter", "SETs from the revocation feed refused.", float64(st.SETsRefused)},
		{"writ_guard_poll_errors_total", "counter", "Failed polls of the revocation feed.", float64(st.PollErrors)},
		{"writ_guard_revoked_grants", "gauge", "Revoked grants the guard remembers.", float64(st.RevokedGrants)},
		{"writ_guard_cached_tokens", "gauge", "Verified tokens in the cache.", float64(st.CachedTokens)},
		{"writ_guard_jwks_fetches_total", "counter", "Fetches of writ's JWKS.", float64(st.JWKSFetches)},
		{"writ_guard_uses_reported_total", "counter", "Token uses reported to writ.", float64(st.UsesReported)},
		{"writ_guard_uses_dropped_total", "counter", "Token uses not reported (buffer full or report failed).", float64(st.UsesDropped)},
	} {
		if err := write(m.name, m.kind, m.help, m.v); err != nil {
			return err
		}
	}
	return nil
}
