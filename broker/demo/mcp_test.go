package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/store/storetest"
)

// demoStack is the demo's writ (agent API and feed, with the demo policy)
// and its resource server with the deploy MCP server, on loopback.
type demoStack struct {
	setup  *Setup
	svc    *broker.Service
	issuer string
}

func startDemoStack(t *testing.T, ctx context.Context) *demoStack {
	t.Helper()
	rsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	setup, err := NewSetup("http://" + rsLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + apiLn.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := broker.New(ctx, setup.Config, storetest.MustOpen(t), broker.Options{Issuer: issuer, Logger: log, Policy: pol, PollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var clients []httpapi.ResourceClient
	for _, r := range setup.Config.Resources {
		clients = append(clients, httpapi.ResourceClient{ID: r.URI, Keys: r.Keys})
	}
	api, err := httpapi.New(svc, httpapi.Options{PublicURL: issuer, RequireDPoP: true, ResourceClients: clients, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := ssf.New(ctx, svc, ssf.Options{Logger: log, Authenticate: func(r *http.Request) (string, error) {
		a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no credential")
		}
		c, err := api.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", issuer+r.URL.Path)
		if err != nil {
			return "", err
		}
		return c.ID, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range feed.Patterns() {
		api.Handle(p, feed)
	}
	srv := &httptest.Server{Listener: apiLn, Config: &http.Server{Handler: api}}
	srv.Start()
	rs, err := NewResourceServer(setup, issuer, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.AddMCP(setup, log); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = feed.Run(ctx) })
	wg.Go(func() { _ = svc.Run(ctx) })
	wg.Go(func() { _ = rs.Serve(ctx, rsLn) })
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return &demoStack{setup: setup, svc: svc, issuer: issuer}
}

// TestDeployBotStepsUp runs the demo's deploy agent against the deploy MCP
// server: its task grants the status tool; calling deploy makes a
// follow-on for exactly tool:deploy under the task, labelled by the demo
// policy as widening; approved, the deploy call is made with the
// follow-on's token (its grant counts the use). Denied, no deploy happens.
func TestDeployBotStepsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's deploy agent for a few seconds")
	}
	for _, approve := range []bool{true, false} {
		t.Run(map[bool]string{true: "approved", false: "denied"}[approve], func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := startDemoStack(t, ctx)
			client, err := agent.New(ctx, s.issuer, s.setup.Keys["deploy-bot"], agent.Options{})
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			a := &simAgent{id: "deploy-bot", client: client, log: log,
				fleet: &Fleet{Setup: s.setup, Issuer: s.issuer, Step: time.Millisecond, Logger: log}, rnd: rand.New(rand.NewPCG(1, 2))}
			op := broker.Operator{Issuer: "https://idp.test", Subject: "dana", Email: "dana@idp.test", EmailVerified: true}
			done := make(chan struct{})
			go func() { defer close(done); a.performMCP(ctx) }()

			var followOn *broker.TaskRequest
			deadline := time.Now().Add(30 * time.Second)
		decide:
			for {
				select {
				case <-done:
					break decide
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the deploy agent did not finish within 30s")
				}
				pending, err := s.svc.Pending(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range pending {
					if r.ParentID != "" {
						followOn = r
						if !approve {
							if _, err := s.svc.Deny(ctx, op, r.ID, "no deploys on Friday"); err != nil {
								t.Fatal(err)
							}
							continue
						}
					}
					if _, err := s.svc.Approve(ctx, op, r.ID); err != nil && broker.ErrorCode(err) != broker.ECONFLICT {
						t.Fatal(err)
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if followOn == nil {
				t.Fatal("the deploy agent asked for no follow-on")
			}
			if !slices.Equal(followOn.Terms.Scopes, []string{"tool:deploy"}) || followOn.Terms.Resource != s.setup.Resources[ResDeploy] {
				t.Errorf("follow-on asks for %v at %s, want exactly tool:deploy at the deploy server", followOn.Terms.Scopes, followOn.Terms.Resource)
			}
			if followOn.Policy == nil || followOn.Policy.Risk != broker.RiskHigh {
				t.Errorf("follow-on policy %+v, want risk high (the demo policy's widening-follow-on)", followOn.Policy)
			}
			if err := s.svc.FlushUsage(ctx); err != nil {
				t.Fatal(err)
			}
			r, err := s.svc.Request(ctx, followOn.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !approve {
				if r.GrantID != "" {
					t.Errorf("a denied follow-on has grant %s", r.GrantID)
				}
				return
			}
			// The guard reports uses every second: wait for the deploy call's.
			deadline = time.Now().Add(10 * time.Second)
			for {
				if err := s.svc.FlushUsage(ctx); err != nil {
					t.Fatal(err)
				}
				g, err := s.svc.Grant(ctx, r.GrantID)
				if err != nil {
					t.Fatal(err)
				}
				if g.ParentID != "" && g.Uses > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("follow-on grant: parent %q, %d uses; want linked to the task and used by the deploy call", g.ParentID, g.Uses)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
