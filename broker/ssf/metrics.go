package ssf

import (
	"fmt"
	"io"
	"sync/atomic"
)

type stats struct {
	polls          atomic.Int64
	pollDelivered  atomic.Int64
	pushDelivered  atomic.Int64
	pushFailures   atomic.Int64
	pushRefused    atomic.Int64
	setErrs        atomic.Int64
	usageReports   atomic.Int64
	streamsCreated atomic.Int64
	streamsDeleted atomic.Int64
}

// Stats are the transmitter's counters since it started.
type Stats struct {
	Streams        int   // streams now
	Polls          int64 // poll requests answered or waiting
	PollDelivered  int64 // SETs sent in poll answers (redeliveries included)
	PushDelivered  int64 // SETs pushed and answered 202
	PushFailures   int64 // push attempts that failed and will be retried
	PushRefused    int64 // SETs a push receiver refused as invalid
	SETErrors      int64 // SETs poll receivers reported in setErrs
	UsageReports   int64 // usage reports received from guards
	StreamsCreated int64
	StreamsDeleted int64
	MaxLag         uint64 // the most feed signals any stream is behind
}

// Stats returns the counters.
func (t *Transmitter) Stats() Stats {
	st := Stats{
		Polls: t.stats.polls.Load(), PollDelivered: t.stats.pollDelivered.Load(),
		PushDelivered: t.stats.pushDelivered.Load(), PushFailures: t.stats.pushFailures.Load(),
		PushRefused: t.stats.pushRefused.Load(), SETErrors: t.stats.setErrs.Load(),
		UsageReports: t.stats.usageReports.Load(), StreamsCreated: t.stats.streamsCreated.Load(),
		StreamsDeleted: t.stats.streamsDeleted.Load(),
	}
	for _, s := range t.Streams() {
		st.Streams++
		st.MaxLag = max(st.MaxLag, s.Lag)
	}
	return st
}

// WriteMetrics writes the counters in the Prometheus text exposition format.
func (t *Transmitter) WriteMetrics(w io.Writer) error {
	st := t.Stats()
	for _, m := range []struct {
		name, kind, help string
		v                float64
	}{
		{"writ_ssf_streams", "gauge", "SSF event streams.", float64(st.Streams)},
		{"writ_ssf_max_lag", "gauge", "Most revocation feed entries any stream has not yet had delivered.", float64(st.MaxLag)},
		{"writ_ssf_polls_total", "counter", "Poll requests.", float64(st.Polls)},
		{"writ_ssf_poll_sets_total", "counter", "SETs sent in poll answers, redeliveries included.", float64(st.PollDelivered)},
		{"writ_ssf_push_sets_total", "counter", "SETs pushed and accepted (202).", float64(st.PushDelivered)},
		{"writ_ssf_push_failures_total", "counter", "Failed push attempts, retried with backoff.", float64(st.PushFailures)},
		{"writ_ssf_push_refused_total", "counter", "SETs a push receiver refused as invalid and that were skipped.", float64(st.PushRefused)},
		{"writ_ssf_set_errors_total", "counter", "SETs poll receivers reported as errors.", float64(st.SETErrors)},
		{"writ_ssf_usage_reports_total", "counter", "Usage reports received from guards.", float64(st.UsageReports)},
		{"writ_ssf_streams_created_total", "counter", "Streams created.", float64(st.StreamsCreated)},
		{"writ_ssf_streams_deleted_total", "counter", "Streams deleted.", float64(st.StreamsDeleted)},
	} {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.kind, m.name, m.v); err != nil {
			return err
		}
	}
	return nil
}
