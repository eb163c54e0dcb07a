package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// TestReadiness (issue 12, faults): /healthz is liveness and answers 200
// whatever the store's writes do; /readyz answers 503 while the store
// cannot write, saying since when and why, and 200 again once a write
// lands; /metrics carries writ_store_writable and the failed commits.
func TestReadiness(t *testing.T) {
	var st *brokertest.FullStore
	e := newEnv(t, envOptions{store: func(inner broker.Store) broker.Store {
		st = &brokertest.FullStore{Store: inner}
		return st
	}})
	metric := func(name string) string {
		t.Helper()
		for line := range strings.SplitSeq(e.get("/metrics").Raw, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return ""
	}
	ready := func(wantStatus int, wantBody string) *response {
		t.Helper()
		r := e.get("/readyz")
		if r.Status != wantStatus || r.str("status") != wantBody || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("/readyz: %d %s, want %d %s", r.Status, r.Raw, wantStatus, wantBody)
		}
		return r
	}

	ready(http.StatusOK, "ready")
	if w, f := metric("writ_store_writable"), metric("writ_store_failed_commits_total"); w != "1" || f != "0" {
		t.Fatalf("a writable store: writ_store_writable %s, failed commits %s", w, f)
	}

	st.Full.Store(true)
	if r := e.post("/bc-authorize", e.authForm(e.release, taskForm("contents:read"))); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("a submission the store cannot write: %d %s", r.Status, r.Raw)
	}
	r := ready(http.StatusServiceUnavailable, "unavailable")
	store, _ := r.Body["store"].(map[string]any)
	if store["writable"] != false || store["since"] != e.clock.Now().UTC().Format("2006-01-02T15:04:05Z07:00") ||
		store["cause"] != "no space left on device" || store["error"] != nil || strings.Contains(r.Raw, "store brokertest:memory") ||
		r.str("reason") != "the store cannot write" {
		t.Fatalf("/readyz while the store cannot write: %s", r.Raw)
	}
	if h := e.get("/healthz"); h.Status != http.StatusOK {
		t.Fatalf("/healthz while the store cannot write: %d %s (liveness must not fail)", h.Status, h.Raw)
	}
	if w, f := metric("writ_store_writable"), metric("writ_store_failed_commits_total"); w != "0" || f == "0" {
		t.Fatalf("a store that cannot write: writ_store_writable %s, failed commits %s", w, f)
	}

	// Space returns; the broker's probe write lands and clears the mark.
	st.Full.Store(false)
	if err := e.svc.ProbeStore(t.Context()); err != nil {
		t.Fatal(err)
	}
	ready(http.StatusOK, "ready")
	if w := metric("writ_store_writable"); w != "1" {
		t.Fatalf("once the store writes again: writ_store_writable %s", w)
	}
}
