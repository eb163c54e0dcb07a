// Package guardprom exposes a guard's counters to a Prometheus registry.
// It is its own package so that a resource server links the Prometheus
// client only when it imports this package; the guard alone offers the
// same counters as guard.Stats and, in the text exposition format, as
// Guard.WriteMetrics.
//
//	reg.MustRegister(guardprom.Collector(g))
package guardprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker/guard"
)

// Collector returns a Prometheus collector of g's counters, to register
// with the resource server's registry. Each scrape reads g.Stats once.
func Collector(g *guard.Guard) prometheus.Collector { return collector{g} }

type collector struct{ g *guard.Guard }

var (
	descAccepted     = prometheus.NewDesc("writ_guard_accepted_total", "Requests whose token the guard accepted.", nil, nil)
	descRefused      = prometheus.NewDesc("writ_guard_refused_total", "Requests the guard refused, by reason.", []string{"reason"}, nil)
	descFresh        = prometheus.NewDesc("writ_guard_feed_fresh", "1 when the revocation feed is caught up and fresh; 0 when the guard fails closed.", nil, nil)
	descContactAge   = prometheus.NewDesc("writ_guard_feed_contact_age_seconds", "Seconds since writ last answered a poll.", nil, nil)
	descSETsApplied  = prometheus.NewDesc("writ_guard_sets_applied_total", "SETs from the revocation feed verified and applied.", nil, nil)
	descSETsRefused  = prometheus.NewDesc("writ_guard_sets_refused_total", "SETs from the revocation feed refused.", nil, nil)
	descPollErrors   = prometheus.NewDesc("writ_guard_poll_errors_total", "Failed polls of the revocation feed.", nil, nil)
	descRevoked      = prometheus.NewDesc("writ_guard_revoked_grants", "Revoked grants the guard remembers.", nil, nil)
	descCached       = prometheus.NewDesc("writ_guard_cached_tokens", "Verified tokens in the cache.", nil, nil)
	descJWKSFetches  = prometheus.NewDesc("writ_guard_jwks_fetches_total", "Fetches of writ's JWKS.", nil, nil)
	descUsesReported = prometheus.NewDesc("writ_guard_uses_reported_total", "Token uses reported to writ.", nil, nil)
	descUsesDropped  = prometheus.NewDesc("writ_guard_uses_dropped_total", "Token uses not reported (buffer full or report failed).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descRefused, descFresh, descContactAge, descSETsApplied, descSETsRefused,
		descPollErrors, descRevoked, descCached, descJWKSFetches, descUsesReported, descUsesDropped} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Stats()
	fresh := 0.0
	if st.FeedFresh {
		fresh = 1
	}
	ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(st.Accepted))
	for r, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), r)
	}
	for _, m := range []struct {
		d    *prometheus.Desc
		kind prometheus.ValueType
		v    float64
	}{
		{descFresh, prometheus.GaugeValue, fresh},
		{descContactAge, prometheus.GaugeValue, st.SinceContact.Seconds()},
		{descSETsApplied, prometheus.CounterValue, float64(st.SETsApplied)},
		{descSETsRefused, prometheus.CounterValue, float64(st.SETsRefused)},
		{descPollErrors, prometheus.CounterValue, float64(st.PollErrors)},
		{descRevoked, prometheus.GaugeValue, float64(st.RevokedGrants)},
		{descCached, prometheus.GaugeValue, float64(st.CachedTokens)},
		{descJWKSFetches, prometheus.CounterValue, float64(st.JWKSFetches)},
		{descUsesReported, prometheus.CounterValue, float64(st.UsesReported)},
		{descUsesDropped, prometheus.CounterValue, float64(st.UsesDropped)},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.kind, m.v)
	}
}
