package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/writhq/writ/broker"
)

// metrics are the agent API's Prometheus collectors.
type metrics struct {
	requests           *prometheus.CounterVec   // by endpoint and status code
	latency            *prometheus.HistogramVec // by endpoint
	tokensIssued       *prometheus.CounterVec   // by token type
	clientTokensIssued prometheus.Counter       // client credentials, for the feed
	clientAuthFailures *prometheus.CounterVec   // by OAuth error
	dpopFailures       *prometheus.CounterVec   // by dpop reason
	throttled          prometheus.Counter
}

// newMetrics registers the collectors with reg. The pending gauge reads
// the store at scrape time, so it is never stale.
func newMetrics(reg prometheus.Registerer, svc *broker.Service) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "writ_http_requests_total",
			Help: "HTTP requests to the agent API, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "writ_http_request_duration_seconds",
			Help:    "Time to answer an agent API request, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "writ_tokens_issued_total",
			Help: "Access tokens minted at the token endpoint, by token type (DPoP or Bearer).",
		}, []string{"token_type"}),
		clientTokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "writ_client_tokens_issued_total",
			Help: "Revocation feed access tokens minted for resource servers with the client credentials grant.",
		}),
		clientAuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "writ_client_auth_failures_total",
			Help: "Refused client authentications, by OAuth error.",
		}, []string{"error"}),
		dpopFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "writ_dpop_proof_failures_total",
			Help: "Refused DPoP proofs at the token endpoint, by reason.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "writ_requests_throttled_total",
			Help: "Task requests refused because their agent was over its rate limit.",
		}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "writ_pending_requests",
		Help: "Task requests waiting for an operator's decision.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		reqs, err := svc.Pending(ctx)
		if err != nil {
			return -1
		}
		return float64(len(reqs))
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.tokensIssued, m.clientTokensIssued, m.clientAuthFailures, m.dpopFailures, m.throttled, pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// instrument counts and times the requests h answers under the label name.
func (m *metrics) instrument(name string, h http.Handler) http.Handler {
	latency := m.latency.WithLabelValues(name)
	requests := &codeCounters{vec: m.requests, endpoint: name}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		latency.Observe(time.Since(start).Seconds())
		requests.inc(sw.status)
	})
}

// codeCounters are one endpoint's request counters by status code, each
// looked up in the vector on its first use and kept, so that counting a
// request formats and hashes no labels. A code's series still appears
// only once a request was answered with it.
type codeCounters struct {
	vec      *prometheus.CounterVec
	endpoint string
	byCode   [500]atomic.Pointer[prometheus.Counter] // codes 100 to 599
}

func (c *codeCounters) inc(code int) {
	if code < 100 || code > 599 {
		c.vec.WithLabelValues(c.endpoint, strconv.Itoa(code)).Inc()
		return
	}
	p := &c.byCode[code-100]
	if ctr := p.Load(); ctr != nil {
		(*ctr).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(c.endpoint, strconv.Itoa(code))
	p.Store(&ctr)
	ctr.Inc()
}

// metricsHandler serves the registry in the Prometheus text format.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush
// for the SSF long-poll and event streams mounted beside these routes).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush through, for handlers that assert http.Flusher.
func (w *statusWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// MetricsHandler serves the registry in the Prometheus format, requiring
// Options.MetricsToken as a bearer token when one is set. The metrics name
// no token or secret, but they do tell an outsider how busy writ is, which
// agents are throttled and how revocation is going.
func (s *Server) MetricsHandler() http.Handler {
	h := metricsHandler(s.registry)
	want := s.opts.MetricsToken
	if want == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="writ metrics"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token",
				"error_description": "/metrics needs the metrics bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
