//go:build linux

package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/client"
)

// readyz is writ serve's /readyz answer.
type readyz struct {
	status int
	Status string             `json:"status"`
	Store  broker.StoreHealth `json:"store"`
	raw    string
}

func getReadyz(t *testing.T, ctx context.Context, r *faultRig) readyz {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.issuer()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := readyz{status: resp.StatusCode, raw: string(b)}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("/readyz: %d %s: %v", resp.StatusCode, b, err)
	}
	return out
}

// getStatus answers /healthz's status code and the value of a metric.
func getStatus(t *testing.T, ctx context.Context, r *faultRig, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.issuer()+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of an unlabelled metric in /metrics.
func metricValue(t *testing.T, ctx context.Context, r *faultRig, name string) string {
	t.Helper()
	_, body := getStatus(t, ctx, r, "/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// checkCannotWrite checks that everything that reports the store's write
// health says it cannot write: /readyz 503 with since and why, /metrics,
// and the operator API's status (what `writ console --server` shows as
// its banner); /healthz, liveness, still answers 200.
func checkCannotWrite(t *testing.T, ctx context.Context, r *faultRig, op *client.Client, why string) {
	t.Helper()
	rz := getReadyz(t, ctx, r)
	if rz.status != http.StatusServiceUnavailable || rz.Status != "unavailable" || rz.Store.Writable ||
		rz.Store.Since.IsZero() || !strings.HasSuffix(rz.Store.Cause, why) || rz.Store.Error != "" || strings.Contains(rz.raw, r.db) ||
		rz.Store.FailedCommits == 0 {
		t.Fatalf("/readyz while the store cannot write: %d %s", rz.status, rz.raw)
	}
	if code, body := getStatus(t, ctx, r, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while the store cannot write: %d %s (liveness must stay 200)", code, body)
	}
	if v := metricValue(t, ctx, r, "writ_store_writable"); v != "0" {
		t.Fatalf("writ_store_writable %s while the store cannot write", v)
	}
	st := op.IssuerStatus()
	if st.Store == nil || st.Store.Writable || !strings.Contains(st.Store.Error, why) || !strings.Contains(st.Store.Error, r.db) ||
		!st.Store.Since.Equal(rz.Store.Since) {
		t.Fatalf("the operator API's status while the store cannot write: %+v", st.Store)
	}
}

// waitReady waits, doing nothing else, until /readyz answers 200 and the
// operator API says the store writes.
func waitReady(t *testing.T, ctx context.Context, r *faultRig, op *client.Client, child *benchChild) readyz {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rz := getReadyz(t, ctx, r)
		if rz.status == http.StatusOK {
			if rz.Status != "ready" || !rz.Store.Writable || rz.Store.Cause != "" {
				t.Fatalf("/readyz 200 with %s", rz.raw)
			}
			if st := op.IssuerStatus(); st.Store == nil || !st.Store.Writable {
				t.Fatalf("/readyz is 200 but the operator API says %+v", st.Store)
			}
			if v := metricValue(t, ctx, r, "writ_store_writable"); v != "1" {
				t.Fatalf("writ_store_writable %s once the store writes", v)
			}
			return rz
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d a minute after space returned: %s%s", rz.status, rz.raw, child.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultDiskFullReady (issue 12, faults): an idle writ serve whose
// store cannot write says so before anyone's action fails again, and
// recovers by itself. One submission is refused (RLIMIT_FSIZE of two
// pages, as in TestFaultDiskFull): from then on /readyz answers 503 with
// since when and why, writ_store_writable is 0 and the operator API's
// status (the remote console's banner) says the same, while /healthz
// answers 200. When the limit is lifted nobody calls anything but
// /readyz: the broker's write probe lands, /readyz is 200 again, and the
// probe's record is in the store afterwards.
func TestFaultDiskFullReady(t *testing.T) {
	r := newFaultRig(t, 2)
	child := r.start("serve")
	ctx := t.Context()
	op := r.operator(ctx)
	if rz := getReadyz(t, ctx, r); rz.status != http.StatusOK || !rz.Store.Writable {
		t.Fatalf("/readyz of a new server: %d %s", rz.status, rz.raw)
	}
	if st := op.IssuerStatus(); st.Store == nil || !st.Store.Writable {
		t.Fatalf("the operator API's status of a new server: %+v", st.Store)
	}

	setFileLimit(t, child.pid(), 8192)
	lifted := false
	t.Cleanup(func() {
		if !lifted {
			setFileLimit(t, child.pid(), unix.RLIM_INFINITY)
		}
	})
	if status, _, body := rawSubmit(t, ctx, r, 0); status != http.StatusServiceUnavailable {
		t.Fatalf("submission while no write succeeds: %d %s", status, body)
	}
	checkCannotWrite(t, ctx, r, op, "file too large")

	liftedAt := time.Now().UTC()
	setFileLimit(t, child.pid(), unix.RLIM_INFINITY)
	lifted = true
	rz := waitReady(t, ctx, r, op, child)
	if rz.Store.Since.Before(liftedAt.Truncate(time.Second)) {
		t.Fatalf("/readyz says the store writes since %s, before the limit was lifted at %s", rz.Store.Since, liftedAt)
	}

	if err := child.stop(); err != nil {
		t.Fatalf("writ serve did not stop cleanly: %v%s", err, child.logTail())
	}
	st := r.openStore("after the probe")
	defer st.Close()
	var probe struct {
		At time.Time `json:"at"`
	}
	err := st.View(ctx, func(tx broker.TxReader) error {
		v, err := tx.Record(broker.RecordStoreProbe, "probe")
		if err != nil {
			return fmt.Errorf("no probe record: %w", err)
		}
		return json.Unmarshal(v, &probe)
	})
	if err != nil || probe.At.Before(liftedAt.Truncate(time.Second)) {
		t.Fatalf("the probe's record: at %s (limit lifted at %s), %v", probe.At, liftedAt, err)
	}
}
