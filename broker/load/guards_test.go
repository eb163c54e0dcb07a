package load_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/store/storetest"
)

// serveWithFeed is serve with the revocation feed mounted, as writ serve
// mounts it: receivers authenticate with an access token from the client
// credentials grant, or a client assertion, as Bearer.
func serveWithFeed(t *testing.T, setup *load.Setup) string {
	t.Helper()
	return serveCountingAuth(t, setup, nil)
}

// feedAuth counts how receivers authenticated to the feed.
type feedAuth struct{ tokens, assertions atomic.Int64 }

func serveCountingAuth(t *testing.T, setup *load.Setup, count *feedAuth) string {
	t.Helper()
	if count == nil {
		count = &feedAuth{}
	}
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	pol, err := load.Policy()
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := broker.New(context.Background(), setup.Config, storetest.MustOpen(t), broker.Options{Issuer: issuer, Policy: pol, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(svc, httpapi.Options{PublicURL: issuer, Logger: quiet,
		ResourceClients: []httpapi.ResourceClient{{ID: load.ResourceURI, Keys: []jose.JSONWebKey{setup.Resource.PublicJWK()}}}})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := ssf.New(context.Background(), svc, ssf.Options{Logger: quiet,
		Authenticate: func(r *http.Request) (string, error) {
			a, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			var c *httpapi.Client
			var err error
			if httpapi.IsAccessToken(a) {
				count.tokens.Add(1)
				c, err = api.AuthenticateClientToken(a, ssf.RequiredScopes(r))
			} else {
				count.assertions.Add(1)
				c, err = api.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", issuer+r.URL.Path)
			}
			if err != nil {
				return "", err
			}
			return c.ID, nil
		},
		Serves:        func(receiver, resource string) bool { return receiver == resource },
		CheckEndpoint: func(*url.URL) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range feed.Patterns() {
		api.Handle(p, feed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	wg.Go(func() { _ = feed.Run(ctx) })
	ts.Config.Handler = api
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		wg.Wait()
	})
	return issuer
}

// TestRevokeToRefused runs the guard protocol with two guard "processes"
// in this process, joined by pipes: each round's token is accepted by
// every guard, revoked by its agent, and refused by every guard.
func TestRevokeToRefused(t *testing.T) {
	setup, err := load.NewSetup(load.AgentsFor(100, 0), jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	issuer := serveWithFeed(t, setup)
	ctx := context.Background()
	var procs []*load.GuardProcess
	var inputs []*io.PipeWriter
	done := make(chan error, 2)
	for range 2 {
		cmdR, cmdW := io.Pipe()
		outR, outW := io.Pipe()
		go func() {
			err := load.RunGuards(ctx, load.GuardsSpec{Issuer: issuer, Resource: setup.Resource, Guards: 3}, cmdR, outW)
			_ = outW.CloseWithError(err)
			done <- err
		}()
		inputs = append(inputs, cmdW)
		p, err := load.NewGuardProcess(cmdW, outR)
		if err != nil {
			t.Fatal(err)
		}
		if p.Guards != 3 {
			t.Fatalf("%d guards ready", p.Guards)
		}
		procs = append(procs, p)
	}
	got, err := load.RevokeToRefused(ctx, load.Options{Issuer: issuer, Setup: setup, PresignRate: 100}, procs, 3)
	if err != nil {
		t.Fatal(err)
	}
	times := got.Times
	if got.ServerCPU != -1 || got.GuardCPU != -1 {
		t.Errorf("CPU %s and %s with no process ids, want -1 (unknown)", got.ServerCPU, got.GuardCPU)
	}
	if len(times) != 3 {
		t.Fatalf("%d rounds", len(times))
	}
	for i, d := range times {
		if d <= 0 || d > 30*time.Second {
			t.Errorf("round %d: %s", i, d)
		}
	}
	// A guard process stops, with its guards, when its commands end.
	for _, in := range inputs {
		_ = in.Close()
	}
	for range inputs {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("guard process: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a guard process did not stop within 30 s of its commands ending")
		}
	}
}

// TestGuardFeedAccessToken: the bench's guards get a feed access token at
// writ's token endpoint and present it on their feed calls, so writ checks
// no client assertion per long poll.
func TestGuardFeedAccessToken(t *testing.T) {
	setup, err := load.NewSetup(load.AgentsFor(10, 0), jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	var count feedAuth
	issuer := serveCountingAuth(t, setup, &count)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmdR, cmdW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := load.RunGuards(ctx, load.GuardsSpec{Issuer: issuer, Resource: setup.Resource, Guards: 2}, cmdR, outW)
		_ = outW.CloseWithError(err)
		done <- err
	}()
	p, err := load.NewGuardProcess(cmdW, outR)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load.RevokeToRefused(ctx, load.Options{Issuer: issuer, Setup: setup, PresignRate: 100}, []*load.GuardProcess{p}, 2); err != nil {
		t.Fatal(err)
	}
	_ = cmdW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Each guard subscribes, verifies, polls a few times and unsubscribes.
	if tok, as := count.tokens.Load(), count.assertions.Load(); tok < 8 || as != 0 {
		t.Errorf("feed calls with an access token %d, with a client assertion %d; want them all with a token", tok, as)
	}
}
