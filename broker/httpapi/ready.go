package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker"
)

const pathReady = "/readyz"

// readiness is the answer of /readyz.
type readiness struct {
	Status string     `json:"status"` // "ready" or "unavailable"
	Issuer string     `json:"issuer"`
	Frozen bool       `json:"frozen"`
	Store  readyStore `json:"store"`
	// Reason says why writ is not ready, for a person reading the probe.
	Reason string `json:"reason,omitempty"`
}

// readyStore is the store's write health as /readyz tells anyone who asks:
// the root cause of a failed commit, with the store's file by its name
// only, never the error around it (the operator API gives that).
type readyStore struct {
	Writable      bool      `json:"writable"`
	Since         time.Time `json:"since,omitzero"`
	Cause         string    `json:"cause,omitempty"`
	FailedCommits uint64    `json:"failed_commits"`
}

// serveReady is readiness, as Kubernetes and load balancers expect it
// beside the liveness of /healthz: 503 while writ cannot do its work,
// because the store cannot write (every approval, redemption and
// revocation is refused until it can; the body says since when and why)
// or does not answer; 200 otherwise. A frozen issuer is ready: freezing is
// an operator's decision, and revocation still works.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	h := s.svc.StoreHealth()
	body := readiness{Status: "ready", Issuer: s.issuer, Frozen: s.svc.IssuerState().Frozen,
		Store: readyStore{Writable: h.Writable, Since: h.Since, Cause: h.Cause, FailedCommits: h.FailedCommits}}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	switch err := s.svc.Ping(ctx); {
	case !body.Store.Writable:
		body.Status, body.Reason = "unavailable", "the store cannot write"
	case err != nil:
		s.log.Error("readiness check: store does not answer", "err", err)
		body.Status, body.Reason = "unavailable", "the store does not answer"
	}
	w.Header().Set("Cache-Control", "no-store")
	if body.Status != "ready" {
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// registerStoreMetrics adds the store's write health to reg: a gauge that
// is 0 while the store cannot write, and the count of commits it refused.
// Both read the Service's record of the last commit, not the store.
func registerStoreMetrics(reg prometheus.Registerer, svc *broker.Service) error {
	writable := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "writ_store_writable",
		Help: "1 while the store's last commit (or write probe) landed, 0 while its commits fail (a full disk, a file size limit, an I/O error).",
	}, func() float64 {
		if svc.StoreHealth().Writable {
			return 1
		}
		return 0
	})
	failed := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "writ_store_failed_commits_total",
		Help: "Commits the store could not write (each refused the call that made it with 503, nothing written), write probes included.",
	}, func() float64 { return float64(svc.StoreHealth().FailedCommits) })
	for _, c := range []prometheus.Collector{writable, failed} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
