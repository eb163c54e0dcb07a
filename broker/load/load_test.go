package load_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/config"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/store/storetest"
)

// serve runs the agent API for setup on loopback, with the load policy
// and the server's default limits, as `writ serve` runs it.
func serve(t *testing.T, setup *load.Setup) string {
	t.Helper()
	pol, err := load.Policy()
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := serveWith(t, setup, pol)
	return issuer
}

// serveWith is serve with another policy (nil: every request goes to an
// operator), returning the service too.
func serveWith(t *testing.T, setup *load.Setup, pol broker.Policy) (string, *broker.Service) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	svc, err := broker.New(context.Background(), setup.Config, storetest.MustOpen(t),
		broker.Options{Issuer: issuer, Policy: pol, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(svc, httpapi.Options{PublicURL: issuer, Logger: slog.New(slog.DiscardHandler),
		ResourceClients: []httpapi.ResourceClient{{ID: load.ResourceURI, Keys: []jose.JSONWebKey{setup.Resource.PublicJWK()}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	ts.Config.Handler = api
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		wg.Wait()
	})
	return issuer, svc
}

func TestScenarios(t *testing.T) {
	// The agents' bursts alone cover the presigned cycles, however fast
	// the server in this process runs them.
	const presignRate = 100
	setup, err := load.NewSetup(load.AgentsFor(presignRate, 0), jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	// The server runs in this process, so its CPU and memory are ours.
	o := load.Options{Issuer: serve(t, setup), Setup: setup, Clients: 8, Duration: time.Second,
		PresignRate: presignRate, AssertRate: 2000, Progress: &progress, ServerPID: os.Getpid()}
	for _, run := range []func(context.Context, load.Options) (load.Result, error){load.Introspect, load.IntrospectAssert, load.Cycle} {
		r, err := run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d in %s (%.0f/s), p50 %s p95 %s p99 %s, %d errors, exhausted %t",
			r.Scenario, r.Count, r.Elapsed, r.Rate(), r.P50, r.P95, r.P99, r.Errors, r.Exhausted)
		if r.Count == 0 || r.Errors != 0 {
			t.Errorf("%s: %d done, %d errors (first: %v)", r.Scenario, r.Count, r.Errors, r.FirstError)
		}
		if r.Server == nil || r.Server.CPU <= 0 || r.Server.PeakRSS <= 0 || r.CPUPerOp() <= 0 {
			t.Errorf("%s: server use %+v (%v)", r.Scenario, r.Server, r.ServerErr)
		}
		if r.P50 <= 0 || r.P50 > r.P90 || r.P90 > r.P95 || r.P95 > r.P99 || r.P99 > r.Max || r.Rate() <= 0 {
			t.Errorf("%s: percentiles p50 %s p95 %s p99 %s max %s, rate %.0f", r.Scenario, r.P50, r.P95, r.P99, r.Max, r.Rate())
		}
	}
	if !strings.Contains(progress.String(), "presigned") {
		t.Errorf("progress %q", progress.String())
	}
}

// TestGeneratedFilesLoad: the configuration and policy `writ load` hands
// to `writ serve` are read back as they were generated.
func TestGeneratedFilesLoad(t *testing.T) {
	setup, err := load.NewSetup(3, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := setup.ConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("load.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(cfg.Agents) != 3 || len(cfg.Resources) != 1 || !cfg.RequireDPoP || cfg.Agents[2].ID != setup.Agents[2].AgentID ||
		len(cfg.Resources[0].Keys) != 1 || cfg.Resources[0].Scopes[0].Risk != broker.RiskLow {
		t.Errorf("configuration read back: %+v", cfg)
	}
	if _, err := policy.Parse("policy.yaml", load.PolicyYAML()); err != nil {
		t.Error(err)
	}
}

func TestRefusesWhatItCannotRun(t *testing.T) {
	setup, err := load.NewSetup(1, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]load.Options{
		"no setup":  {Issuer: "http://127.0.0.1:1"},
		"no issuer": {Setup: setup},
		"too long":  {Issuer: "http://127.0.0.1:1", Setup: setup, Duration: time.Hour},
	} {
		if _, err := load.Cycle(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
