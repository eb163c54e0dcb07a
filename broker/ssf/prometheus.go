package ssf

import "github.com/prometheus/client_golang/prometheus"

// Collector returns a Prometheus collector of the transmitter's counters,
// to register with the HTTP API's registry.
func (t *Transmitter) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Transmitter }

type metricDesc struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(Stats) float64
}

var transmitterMetrics = []metricDesc{
	{prometheus.NewDesc("writ_ssf_streams", "SSF event streams.", nil, nil), prometheus.GaugeValue, func(s Stats) float64 { return float64(s.Streams) }},
	{prometheus.NewDesc("writ_ssf_max_lag", "Most revocation feed entries any stream has not yet had delivered.", nil, nil), prometheus.GaugeValue, func(s Stats) float64 { return float64(s.MaxLag) }},
	{prometheus.NewDesc("writ_ssf_polls_total", "Poll requests.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.Polls) }},
	{prometheus.NewDesc("writ_ssf_poll_sets_total", "SETs sent in poll answers, redeliveries included.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.PollDelivered) }},
	{prometheus.NewDesc("writ_ssf_push_sets_total", "SETs pushed and accepted (202).", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.PushDelivered) }},
	{prometheus.NewDesc("writ_ssf_push_failures_total", "Failed push attempts, retried with backoff.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.PushFailures) }},
	{prometheus.NewDesc("writ_ssf_push_refused_total", "SETs a push receiver refused as invalid and that were skipped.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.PushRefused) }},
	{prometheus.NewDesc("writ_ssf_set_errors_total", "SETs poll receivers reported as errors.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.SETErrors) }},
	{prometheus.NewDesc("writ_ssf_usage_reports_total", "Usage reports received from guards.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.UsageReports) }},
	{prometheus.NewDesc("writ_ssf_streams_created_total", "Streams created.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.StreamsCreated) }},
	{prometheus.NewDesc("writ_ssf_streams_deleted_total", "Streams deleted.", nil, nil), prometheus.CounterValue, func(s Stats) float64 { return float64(s.StreamsDeleted) }},
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range transmitterMetrics {
		ch <- m.desc
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.t.Stats()
	for _, m := range transmitterMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.get(st))
	}
}
