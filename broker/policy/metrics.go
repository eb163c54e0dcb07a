package policy

import (
	"maps"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker"
)

// stats counts a Watcher's evaluations by verdict and its shadow rules'
// hits by rule, across reloads: a shadow rule's count is the evidence an
// operator reads before enforcing it.
type stats struct {
	mu       sync.Mutex
	verdicts map[string]uint64
	shadow   map[string]uint64
}

func (s *stats) record(res broker.PolicyResult, fx broker.PolicyEffects) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verdicts == nil {
		s.verdicts, s.shadow = make(map[string]uint64), make(map[string]uint64)
	}
	s.verdicts[res.Verdict]++
	for _, h := range fx.Shadow {
		s.shadow[h.Rule]++
	}
}

// ShadowHits returns how many requests each shadow rule (mode: log) has
// matched since the watcher started, by rule name.
func (w *Watcher) ShadowHits() map[string]uint64 {
	w.stats.mu.Lock()
	defer w.stats.mu.Unlock()
	return maps.Clone(w.stats.shadow)
}

// Collector returns a Prometheus collector of the watcher's counters, to
// register with the HTTP API's registry.
func (w *Watcher) Collector() prometheus.Collector { return collector{w} }

var (
	shadowHitsDesc = prometheus.NewDesc("writ_policy_shadow_hits_total",
		"Requests a shadow policy rule (mode: log) matched and would have affected, by rule.", []string{"rule"}, nil)
	evaluationsDesc = prometheus.NewDesc("writ_policy_evaluations_total",
		"Requests the policy evaluated at submission, by verdict.", []string{"verdict"}, nil)
)

type collector struct{ w *Watcher }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- shadowHitsDesc
	ch <- evaluationsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.w.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	for rule, n := range s.shadow {
		ch <- prometheus.MustNewConstMetric(shadowHitsDesc, prometheus.CounterValue, float64(n), rule)
	}
	for verdict, n := range s.verdicts {
		ch <- prometheus.MustNewConstMetric(evaluationsDesc, prometheus.CounterValue, float64(n), verdict)
	}
}
