package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/wire"
)

// TestStepUpAsksForNoMore: a challenge that asks for more than it names,
// or points at a resource this writ does not serve, is refused before
// anything reaches writ; an approved step-up is a follow-on of exactly the
// challenge's scopes, reused rather than asked for twice; the bound holds.
func TestStepUpAsksForNoMore(t *testing.T) {
	key, err := agent.GenerateKey("release-bot", jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	var submitted atomic.Int32
	var followOn atomic.Pointer[broker.TaskRequest]
	_, issuer := writ(t, key, func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest) {
		submitted.Add(1)
		if r.ParentID != "" {
			followOn.Store(r)
		}
		if _, err := svc.Approve(ctx, op, r.ID); err != nil {
			t.Error(err)
		}
	})
	// Resource servers publishing RFC 9728 metadata: one honest, one
	// naming another resource, one trusting another authorization server.
	meta := func(resource func(self string) string, as string) string {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(wire.ProtectedResourceMetadata{Resource: resource(srv.URL), AuthorizationServers: []string{as}})
		}))
		t.Cleanup(srv.Close)
		return wire.ProtectedResourceMetadataURL(srv.URL) // where a challenge from it points
	}
	otherResource := meta(func(string) string { return gitURI }, issuer)
	otherAS := meta(func(self string) string { return self }, "https://evil.example")

	c, err := agent.New(context.Background(), issuer, key, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "tidy the README", Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	detail := func(actions []string, locs ...string) []wire.AuthorizationDetail {
		return []wire.AuthorizationDetail{{Type: wire.TaskDetailType, Actions: actions, Locations: locs}}
	}
	for _, tt := range []struct {
		name string
		ch   *wire.ScopeChallenge
		err  string
	}{
		{"no challenge", nil, "naming the missing scopes"},
		{"a detail naming another action", &wire.ScopeChallenge{Scopes: []string{"contents:write"},
			Details: detail([]string{"contents:write", "secrets:read"}, gitURI)}, "beyond the challenge's scopes"},
		{"a detail without actions (all of them)", &wire.ScopeChallenge{Scopes: []string{"contents:write"},
			Details: detail(nil, gitURI)}, "beyond the challenge's scopes"},
		{"a detail elsewhere", &wire.ScopeChallenge{Scopes: []string{"contents:write"},
			Details: detail([]string{"contents:write"}, "https://bank.example")}, "outside"},
		{"a foreign detail type", &wire.ScopeChallenge{Scopes: []string{"contents:write"},
			Details: []wire.AuthorizationDetail{{Type: "payment_initiation", Actions: []string{"contents:write"}, Locations: []string{gitURI}}}}, "not writ's"},
		{"metadata for another resource", &wire.ScopeChallenge{Scopes: []string{"contents:write"}, ResourceMetadata: otherResource}, "RFC 9728"},
		{"metadata trusting another issuer", &wire.ScopeChallenge{Scopes: []string{"contents:write"}, ResourceMetadata: otherAS}, "authorization servers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := task.StepUp(context.Background(), tt.ch)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want one saying %q", err, tt.err)
			}
		})
	}
	if n := submitted.Load(); n != 1 {
		t.Fatalf("%d requests reached writ, want only the task's", n)
	}

	ch := &wire.ScopeChallenge{Scopes: []string{"contents:write"}, Details: detail([]string{"contents:write"}, gitURI+"/repos/acme/web")}
	child, err := task.StepUp(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	f := followOn.Load()
	if f == nil || f.ParentID != task.ID || strings.Join(f.Terms.Scopes, " ") != "contents:write" || len(f.Terms.Details) != 1 ||
		f.Terms.Details[0].Locations[0] != gitURI+"/repos/acme/web" || !strings.Contains(f.Intent, "tidy the README") {
		t.Fatalf("follow-on %+v", f)
	}
	if child.ID != f.ID || strings.Join(child.Scopes, " ") != "contents:write" {
		t.Errorf("child task %s %v", child.ID, child.Scopes)
	}
	again, err := task.StepUp(context.Background(), ch)
	if err != nil || again != child || submitted.Load() != 2 {
		t.Errorf("second step-up for the same scopes: %v, %d requests; want the same follow-on, no new request", err, submitted.Load())
	}

	// The bound: a client allowing no step-ups asks for none.
	none, err := agent.New(context.Background(), issuer, key, agent.Options{MaxStepUps: -1})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := none.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "x", Scopes: []string{"contents:read"}, Resource: gitURI}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t2.StepUp(context.Background(), ch); !errors.Is(err, agent.ErrStepUpLimit) {
		t.Fatalf("err %v, want ErrStepUpLimit", err)
	}
}
