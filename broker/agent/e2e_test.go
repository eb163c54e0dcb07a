package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/store/storetest"
)

const gitURI = "https://git.acme.example"

// writ starts the real agent API on loopback with one agent, and an
// operator that decides each request with decide as it arrives.
func writ(t *testing.T, key *agent.Key, decide func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest)) (*broker.Service, string) {
	t.Helper()
	return writFor(t, key, gitURI, decide)
}

// writFor is writ with resource as the one resource.
func writFor(t *testing.T, key *agent.Key, resource string, decide func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest)) (*broker.Service, string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := &broker.Config{
		Limits:    broker.DefaultLimits,
		Resources: []broker.Resource{{URI: resource, Scopes: []broker.Scope{{Name: "contents:read"}, {Name: "contents:write"}}}},
		Agents: []broker.Agent{{ID: key.AgentID, Keys: []jose.JSONWebKey{key.PublicJWK()},
			Ceiling: []broker.CeilingEntry{{Resource: resource, Scopes: []string{"contents:read", "contents:write"}}}}},
	}
	quiet := slog.New(slog.DiscardHandler)
	svc, err := broker.New(context.Background(), cfg, storetest.MustOpen(t), broker.Options{Issuer: issuer, PollInterval: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(svc, httpapi.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = api
	ts.Start()
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithCancel(context.Background())
	events := svc.Subscribe(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			if ev.Kind == broker.EventRequestSubmitted {
				decide(ctx, svc, ev.Request)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return svc, issuer
}

var op = broker.Operator{Issuer: "https://idp.test", Subject: "op1"}

func TestAgentGetsTokenUsesItAndFinishes(t *testing.T) {
	key, err := agent.GenerateKey("release-bot", jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	svc, issuer := writ(t, key, func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest) {
		time.Sleep(1500 * time.Millisecond) // let the agent see "pending" first
		if _, err := svc.Narrow(ctx, op, r.ID, broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 5 * time.Minute}, "read only"); err != nil {
			t.Error(err)
		}
	})
	c, err := agent.New(context.Background(), issuer, key, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var progress []agent.Progress
	task, err := c.RequestAndWait(context.Background(), agent.TaskRequest{
		Intent: "tidy the README", Scopes: []string{"contents:read", "contents:write"}, Resource: gitURI, TTL: 30 * time.Minute,
	}, func(p agent.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 || progress[0].Status != "authorization_pending" {
		t.Errorf("progress %+v: the agent never saw the request pending", progress)
	}
	if strings.Join(task.Scopes, " ") != "contents:read" || time.Until(task.ExpiresAt) > 5*time.Minute {
		t.Fatalf("narrowed task: %v until %s", task.Scopes, task.ExpiresAt)
	}

	// A resource server that checks the token and its DPoP binding.
	v := &dpop.Verifier{Replay: dpop.NewReplayCache(0)}
	var rs *httptest.Server
	rs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		claims, err := svc.VerifyAccessToken(tok)
		if scheme != "DPoP" || err != nil || claims.Cnf == nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if p, err := v.VerifyRequest(r, rs.URL+r.URL.Path, tok); err != nil || p.JKT != claims.Cnf.JKT {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if !svc.StatusOf(mustGrant(t, svc, claims.SID)).Live() {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rs.Close)
	for i := 0; i < 2; i++ { // each request gets its own proof
		resp, err := task.HTTPClient().Get(rs.URL + "/repos/acme/web")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
	}
	// The token copied without its key is useless.
	req, _ := http.NewRequest(http.MethodGet, rs.URL+"/repos/acme/web", nil)
	req.Header.Set("Authorization", "Bearer "+task.AccessToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stolen token: %v %v", resp, err)
	}
	if err := task.Done(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := task.HTTPClient().Get(rs.URL + "/repos/acme/web")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after done: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestAgentDenied(t *testing.T) {
	key, _ := agent.GenerateKey("release-bot", jose.EdDSA)
	_, issuer := writ(t, key, func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest) {
		if _, err := svc.Deny(ctx, op, r.ID, "secrets are not part of a README task"); err != nil {
			t.Error(err)
		}
	})
	c, err := agent.New(context.Background(), issuer, key, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "x", Scopes: []string{"contents:write"}, Resource: gitURI}, nil)
	if !errors.Is(err, agent.ErrDenied) || !strings.Contains(err.Error(), "README task") {
		t.Fatalf("err %v, want ErrDenied with the reason", err)
	}
	// Refused at once: beyond the ceiling.
	_, err = c.Request(context.Background(), agent.TaskRequest{Intent: "x", Scopes: []string{"admin"}, Resource: gitURI})
	if !errors.Is(err, agent.ErrInvalidScope) {
		t.Fatalf("err %v, want ErrInvalidScope", err)
	}
}

func mustGrant(t *testing.T, svc *broker.Service, id string) *broker.Grant {
	g, err := svc.Grant(context.Background(), id)
	if err != nil {
		t.Error(err)
		return &broker.Grant{}
	}
	return g
}
