package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

// TestStepUpClient: a 403 challenge to a request becomes a follow-on, and
// the request (body and all) is sent again with the follow-on's token; a
// body too large to keep is not sent twice: its 403 comes back as it is.
func TestStepUpClient(t *testing.T) {
	key, _ := agent.GenerateKey("release-bot", jose.ES256)
	// A resource server that wants contents:write for POST and reads the
	// scope from the token's claims (the agent's own token, unverified: the
	// signature is not what this test is about).
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.Contains(scopeOf(t, tok), "contents:write") {
			w.Header().Set("WWW-Authenticate", `DPoP error="insufficient_scope", scope="contents:write"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	}))
	t.Cleanup(rs.Close)
	var submitted atomic.Int32
	_, issuer := writFor(t, key, rs.URL, func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest) {
		submitted.Add(1)
		if _, err := svc.Approve(ctx, op, r.ID); err != nil {
			t.Error(err)
		}
	})
	c, err := agent.New(context.Background(), issuer, key, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "x", Scopes: []string{"contents:read"}, Resource: rs.URL, TTL: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := task.StepUpClient()
	resp, err := hc.Post(rs.URL+"/repos", "text/plain", io.NopCloser(strings.NewReader("hello")))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "hello" || submitted.Load() != 2 {
		t.Fatalf("after step-up: %d %q, %d requests", resp.StatusCode, got, submitted.Load())
	}
	big := strings.Repeat("x", 5<<20)
	n := submitted.Load()
	fresh, err := c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "y", Scopes: []string{"contents:read"}, Resource: rs.URL, TTL: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = fresh.StepUpClient().Post(rs.URL+"/repos", "text/plain", io.NopCloser(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || submitted.Load() != n+1 {
		t.Errorf("large body: %d, %d new requests; want the 403 and no step-up", resp.StatusCode, submitted.Load()-n)
	}
}

// scopeOf reads the scope claim of a JWT without verifying it.
func scopeOf(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Error(err)
		return ""
	}
	var c struct {
		Scope string `json:"scope"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Scope
}

// TestStepUpClientSendsTheCoveringTokenFirst: once a kind of request drew
// a challenge and was stepped up, later requests of that kind go out with
// the follow-on's token at once (no refused attempt with the parent's),
// and other requests, including JSON-RPC calls of other tools at the same
// URL, keep the parent's token.
func TestStepUpClientSendsTheCoveringTokenFirst(t *testing.T) {
	key, _ := agent.GenerateKey("release-bot", jose.ES256)
	var mu sync.Mutex
	var refusals int
	var used []string // the scope of the token each accepted request carried
	// A resource server: POST /repos/acme/web needs contents:write there,
	// and so does the JSON-RPC tool "deploy" at /rpc; anything else needs
	// contents:read.
	var rs *httptest.Server
	rs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		body, _ := io.ReadAll(r.Body)
		action, loc := "contents:read", rs.URL+r.URL.Path
		if r.Method == http.MethodPost && (r.URL.Path == "/repos/acme/web" || strings.Contains(string(body), `"name":"deploy"`)) {
			action = "contents:write"
		}
		scope := scopeOf(t, tok)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(strings.Fields(scope), action) {
			refusals++
			d := wire.EncodeDetails([]wire.AuthorizationDetail{{Type: wire.TaskDetailType, Actions: []string{action}, Locations: []string{loc}}})
			w.Header().Set("WWW-Authenticate", `DPoP error="insufficient_scope", scope="`+action+`", authorization_details="`+d+`"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		used = append(used, scope)
	}))
	t.Cleanup(rs.Close)
	var submitted atomic.Int32
	_, issuer := writFor(t, key, rs.URL, func(ctx context.Context, svc *broker.Service, r *broker.TaskRequest) {
		submitted.Add(1)
		if _, err := svc.Approve(ctx, op, r.ID); err != nil {
			t.Error(err)
		}
	})
	c, err := agent.New(context.Background(), issuer, key, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "x", Scopes: []string{"contents:read"}, Resource: rs.URL, TTL: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rpc := func(tool string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
	}
	send := func(hc *http.Client, method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, rs.URL+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s %s: %d", method, path, body, resp.StatusCode)
		}
	}
	hc := task.StepUpClient()
	send(hc, http.MethodPost, "/repos/acme/web", "a")
	send(hc, http.MethodPost, "/rpc", rpc("deploy"))
	if refusals != 2 || submitted.Load() != 3 {
		t.Fatalf("%d refusals, %d requests after two step-ups; want 2 and 3", refusals, submitted.Load())
	}
	used = nil
	const n = 4
	for _, client := range []*http.Client{hc, task.StepUpClient()} { // a new client of the task knows too
		for range n {
			for _, r := range []struct{ method, path, body string }{
				{http.MethodPost, "/repos/acme/web", "a"},
				{http.MethodPost, "/rpc", rpc("deploy")},
				{http.MethodPost, "/rpc", rpc("status")},
				{http.MethodGet, "/repos/acme/web", ""},
				{http.MethodPost, "/repos/acme/web?page=2", "b"},
			} {
				send(client, r.method, r.path, r.body)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if refusals != 2 || submitted.Load() != 3 {
		t.Errorf("%d refusals, %d requests after the step-ups; want no more of either", refusals, submitted.Load())
	}
	want := []string{"contents:write", "contents:write", "contents:read", "contents:read", "contents:write"}
	for i, got := range used {
		if got != want[i%len(want)] {
			t.Errorf("request %d carried a token for %q, want %q", i, got, want[i%len(want)])
		}
	}
}
