package cmd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/store/storetest"
)

// writ serve --metrics-listen: /metrics on its own address, behind the
// token from --metrics-token-file, and not on the public API.
func TestMetricsListener(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-metrics-token-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := metricsFlags{listen: "127.0.0.1:0", tokenFile: tokenFile}
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := broker.New(context.Background(), ssftest.Config(), storetest.MustOpen(t), broker.Options{Issuer: "http://127.0.0.1:1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	env := &brokerEnv{Config: ssftest.Config(), Service: svc, Log: quiet, metrics: opts}
	api, err := newAgentAPI(env, "http://127.0.0.1:1", false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stop, at, err := startMetricsListener(f.listen, api, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+at+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, body := get("Bearer s3cret-metrics-token-xyz"); code != http.StatusOK || !strings.Contains(body, "writ_") {
		t.Fatalf("with the token: %d", code)
	}
	// Not on the public API.
	rec := &statusRecorder{header: http.Header{}}
	api.ServeHTTP(rec, mustRequest(t, http.MethodGet, "http://127.0.0.1:1/metrics"))
	if rec.status != http.StatusNotFound {
		t.Fatalf("/metrics on the public API: %d", rec.status)
	}
	// A token too short to be a secret is refused at start.
	if err := os.WriteFile(tokenFile, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.options(); err == nil {
		t.Fatal("a 5-character metrics token was accepted")
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
