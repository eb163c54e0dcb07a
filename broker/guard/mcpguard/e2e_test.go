package mcpguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/guard/mcpguard"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/store/storetest"
	"github.com/writhq/writ/wire"
)

var op = broker.Operator{Issuer: "https://idp.test", Subject: "priya"}

// stack is writ (agent API and revocation feed) and a guarded MCP server
// with three tools, on loopback, with an operator who decides follow-ons
// as the test says.
type stack struct {
	svc      *broker.Service
	issuer   string
	resource string     // the MCP endpoint and resource URI
	key      *agent.Key // deploy-bot
	other    *agent.Key // ops-bot, another agent allowed the status tool
	guard    *guard.Guard

	mu        sync.Mutex
	decideFor func(r *broker.TaskRequest) (approve bool, reason string)
	submitted []*broker.TaskRequest
	calls     []string // tools the server ran
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	mcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{issuer: "http://" + apiLn.Addr().String(), resource: "http://" + mcpLn.Addr().String() + "/mcp"}
	if s.key, err = agent.GenerateKey("deploy-bot", jose.ES256); err != nil {
		t.Fatal(err)
	}
	if s.other, err = agent.GenerateKey("ops-bot", jose.ES256); err != nil {
		t.Fatal(err)
	}
	rsKey, err := agent.GenerateKey(s.resource, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tools := []string{"tool:status", "tool:deploy", "tool:rollback"}
	var scopes []broker.Scope
	for _, sc := range tools {
		scopes = append(scopes, broker.Scope{Name: sc, Risk: broker.RiskHigh})
	}
	cfg := &broker.Config{
		Limits:      broker.DefaultLimits,
		RequireDPoP: true,
		Resources:   []broker.Resource{{URI: s.resource, Name: "Deploy", Scopes: scopes, Keys: []jose.JSONWebKey{rsKey.PublicJWK()}}},
		Agents: []broker.Agent{{ID: s.key.AgentID, Keys: []jose.JSONWebKey{s.key.PublicJWK()},
			Ceiling: []broker.CeilingEntry{{Resource: s.resource, Scopes: tools}}},
			{ID: s.other.AgentID, Keys: []jose.JSONWebKey{s.other.PublicJWK()},
				Ceiling: []broker.CeilingEntry{{Resource: s.resource, Scopes: []string{"tool:status"}}}}},
	}
	if s.svc, err = broker.New(ctx, cfg, storetest.MustOpen(t), broker.Options{Issuer: s.issuer, Logger: log, PollInterval: time.Second}); err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(s.svc, httpapi.Options{PublicURL: s.issuer, RequireDPoP: true, Logger: log,
		ResourceClients: []httpapi.ResourceClient{{ID: s.resource, Keys: []jose.JSONWebKey{rsKey.PublicJWK()}}}})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := ssf.New(ctx, s.svc, ssf.Options{Logger: log, Authenticate: func(r *http.Request) (string, error) {
		a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no credential")
		}
		c, err := api.AuthenticateAssertion(r.Context(), httpapi.AssertionTypeJWTBearer, a, "", s.issuer+r.URL.Path)
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
	apiSrv := &httptest.Server{Listener: apiLn, Config: &http.Server{Handler: api}}
	apiSrv.Start()

	assert, err := guard.PrivateKeyJWT(s.resource, &rsKey.JWK, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	s.guard, err = guard.New(guard.Config{Issuer: s.issuer, Audience: s.resource, PublicURL: "http://" + mcpLn.Addr().String(),
		RequireDPoP: true, ClientAssertion: assert, Scopes: tools, Logger: log, ReportInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mg, err := mcpguard.New(mcpguard.Config{Guard: s.guard})
	if err != nil {
		t.Fatal(err)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "deploy", Version: "1"}, nil)
	for _, name := range []string{"status", "deploy", "rollback"} {
		mcp.AddTool(server, &mcp.Tool{Name: name, Description: name + " the service"},
			func(ctx context.Context, req *mcp.CallToolRequest, in struct {
				Service string `json:"service"`
			}) (*mcp.CallToolResult, any, error) {
				s.mu.Lock()
				s.calls = append(s.calls, name)
				s.mu.Unlock()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " " + in.Service + ": ok"}}}, nil, nil
			})
	}
	server.AddReceivingMiddleware(mg.ToolsListFilter())
	mux := http.NewServeMux()
	s.guard.HandleMetadata(mux)
	mux.Handle("/mcp", mg.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	mcpSrv := &httptest.Server{Listener: mcpLn, Config: &http.Server{Handler: mux}}
	mcpSrv.Start()

	var wg sync.WaitGroup
	events := s.svc.Subscribe(ctx)
	wg.Go(func() { _ = feed.Run(ctx) })
	wg.Go(func() { _ = s.guard.Run(ctx) })
	wg.Go(func() {
		for ev := range events {
			if ev.Kind != broker.EventRequestSubmitted {
				continue
			}
			s.mu.Lock()
			s.submitted = append(s.submitted, ev.Request)
			decide := s.decideFor
			s.mu.Unlock()
			approve, reason := true, ""
			if decide != nil && ev.Request.ParentID != "" {
				approve, reason = decide(ev.Request)
			}
			if approve {
				_, err = s.svc.Approve(ctx, op, ev.Request.ID)
			} else {
				_, err = s.svc.Deny(ctx, op, ev.Request.ID, reason)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("decide %s: %v", ev.Request.ID, err)
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		mcpSrv.Close()
		apiSrv.Close()
		wg.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for ok, why := s.guard.Ready(); !ok; ok, why = s.guard.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("guard not ready: %s", why)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

func (s *stack) requests() []*broker.TaskRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submitted)
}

func (s *stack) ran() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// task asks writ for a task of deploy-bot allowing the status tool only.
func (s *stack) task(t *testing.T, opts agent.Options) *agent.Task {
	return s.taskOf(t, s.key, opts)
}

func (s *stack) taskOf(t *testing.T, key *agent.Key, opts agent.Options) *agent.Task {
	t.Helper()
	c, err := agent.New(context.Background(), s.issuer, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.RequestAndWait(context.Background(), agent.TaskRequest{Intent: "check and ship web v2.14",
		Scopes: []string{"tool:status"}, Resource: s.resource, TTL: 10 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// connect opens an MCP session through the official SDK's client over
// streamable HTTP, with hc making the requests.
func (s *stack) connect(t *testing.T, hc *http.Client) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "deploy-bot", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: s.resource, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(cs *mcp.ClientSession, tool string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"service": "web"}})
	if err != nil {
		return "", err
	}
	if res.IsError || len(res.Content) == 0 {
		return "", fmt.Errorf("tool error: %+v", res.Content)
	}
	return res.Content[0].(*mcp.TextContent).Text, nil
}

// TestStepUpThroughTheMCPClient: the official SDK's client calls a granted
// tool, then one it was not granted: the guard refuses it with the
// challenge, the task's step-up client asks writ for exactly that tool as a
// follow-on, the operator approves, and the call goes through; the next
// call of that tool needs no new request. A denied step-up returns the
// operator's reason and is not asked again. Revoking the parent refuses
// the next tool call.
func TestStepUpThroughTheMCPClient(t *testing.T) {
	s := newStack(t)
	s.decideFor = func(r *broker.TaskRequest) (bool, string) {
		if slices.Contains(r.Terms.Scopes, "tool:rollback") {
			return false, "no rollbacks during the freeze"
		}
		return true, ""
	}
	task := s.task(t, agent.Options{})
	cs := s.connect(t, task.StepUpClient())

	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Tools) != 1 || list.Tools[0].Name != "status" {
		t.Errorf("tools/list shows %d tools, want only status", len(list.Tools))
	}
	if out, err := call(cs, "status"); err != nil || out != "status web: ok" {
		t.Fatalf("granted tool: %q %v", out, err)
	}
	if n := len(s.requests()); n != 1 {
		t.Fatalf("%d requests after a granted call, want 1", n)
	}

	// Not granted: step up, approved, called.
	if out, err := call(cs, "deploy"); err != nil || out != "deploy web: ok" {
		t.Fatalf("deploy after step-up: %q %v", out, err)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want the task and one follow-on", len(reqs))
	}
	f := reqs[1]
	wantDetail := broker.AuthorizationDetail{Type: wire.TaskDetailType, Actions: []string{"tool:deploy"}, Locations: []string{s.resource}}
	if f.ParentID != task.ID || !slices.Equal(f.Terms.Scopes, []string{"tool:deploy"}) || f.Terms.Resource != s.resource ||
		len(f.Terms.Details) != 1 || !slices.Equal(f.Terms.Details[0].Actions, wantDetail.Actions) || !slices.Equal(f.Terms.Details[0].Locations, wantDetail.Locations) {
		t.Errorf("follow-on %+v: want exactly tool:deploy at %s under %s", f.Terms, s.resource, task.ID)
	}
	// Again: the follow-on's token serves it, no new request.
	if _, err := call(cs, "deploy"); err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests after a second deploy, want 2", n)
	}

	// Denied: the operator's reason comes back, once; no second request.
	_, err = call(cs, "rollback")
	if err == nil || !strings.Contains(err.Error(), "no rollbacks during the freeze") {
		t.Fatalf("denied step-up: %v, want the operator's reason", err)
	}
	// The SDK reports the transport's error as text; the task keeps the typed cause.
	if r := task.Refusals(); len(r) != 1 || !errors.Is(r[0], agent.ErrDenied) || !strings.Contains(r[0].Reason(), "no rollbacks during the freeze") ||
		!slices.Equal(r[0].Scopes, []string{"tool:rollback"}) {
		t.Errorf("refusals %v, want the denied tool:rollback with its reason", r)
	}
	cs = s.connect(t, task.StepUpClient()) // the SDK may close a session after a transport error
	if _, err = call(cs, "rollback"); err == nil || !strings.Contains(err.Error(), "no rollbacks during the freeze") {
		t.Fatalf("rollback again: %v", err)
	}
	if n := len(s.requests()); n != 3 {
		t.Errorf("%d requests after two denied rollbacks, want 3 (asked once)", n)
	}
	if got := s.ran(); !slices.Equal(got, []string{"status", "deploy", "deploy"}) {
		t.Errorf("server ran %v", got)
	}

	// Revoking the parent ends the follow-on too: the next call is refused.
	parent, err := s.svc.Request(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.Revoke(context.Background(), op, parent.GrantID, "done here"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, errStatus := call(cs, "status")
		_, errDeploy := call(cs, "deploy")
		if errStatus != nil && errDeploy != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tool calls still accepted 30s after the parent was revoked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.ran(); len(got) > 5 {
		t.Errorf("server ran %v", got)
	}
}

// TestSessionBoundToItsAgent: another agent, with a valid token of its own
// for the server, cannot use deploy-bot's MCP session; the session's own
// agent can, and a request with no token gets the RFC 9728 challenge.
func TestSessionBoundToItsAgent(t *testing.T) {
	s := newStack(t)
	cs := s.connect(t, s.task(t, agent.Options{}).StepUpClient())
	if _, err := call(cs, "status"); err != nil {
		t.Fatal(err)
	}
	other := s.taskOf(t, s.other, agent.Options{})
	post := func(hc *http.Client, session string) *http.Response {
		body := `{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"status","arguments":{"service":"web"}}}`
		req, _ := http.NewRequest(http.MethodPost, s.resource, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(other.HTTPClient(), cs.ID()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ops-bot on deploy-bot's session: %d, want 403", resp.StatusCode)
	}
	if got := s.ran(); len(got) != 1 {
		t.Errorf("server ran %v, want only deploy-bot's status", got)
	}
	resp := post(http.DefaultClient, cs.ID())
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	cs2, err := wire.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs2) == 0 || cs2[0].Params["resource_metadata"] != wire.ProtectedResourceMetadataURL(s.resource) {
		t.Errorf("no-token challenge %v %v, want resource_metadata", cs2, err)
	}
}

// TestSteppedUpCallsGoStraightToTheFollowOn: after a step-up, later calls
// of the stepped-up tool carry the follow-on's token from the first try,
// so the guard refuses none of them (each refused use would show on the
// console), and calls the parent allows still carry the parent's token;
// a new step-up client of the same task knows it too.
func TestSteppedUpCallsGoStraightToTheFollowOn(t *testing.T) {
	s := newStack(t)
	task := s.task(t, agent.Options{})
	cs := s.connect(t, task.StepUpClient())
	refused := func() int64 {
		var n int64
		for _, c := range s.guard.Stats().Refused {
			n += c
		}
		return n
	}
	if _, err := call(cs, "status"); err != nil {
		t.Fatal(err)
	}
	if _, err := call(cs, "deploy"); err != nil {
		t.Fatalf("deploy after step-up: %v", err)
	}
	if n := refused(); n != 1 {
		t.Fatalf("%d refused uses after one step-up, want 1 (the challenge)", n)
	}
	const calls = 5
	for i := range calls {
		if _, err := call(cs, "deploy"); err != nil {
			t.Fatalf("deploy %d: %v", i, err)
		}
		if _, err := call(cs, "status"); err != nil {
			t.Fatalf("status %d: %v", i, err)
		}
	}
	cs2 := s.connect(t, task.StepUpClient())
	if _, err := call(cs2, "deploy"); err != nil {
		t.Fatalf("deploy on a new client: %v", err)
	}
	if n := refused(); n != 1 {
		t.Errorf("%d refused uses after %d more deploy and status calls, want still 1: %v", n, calls, s.guard.Stats().Refused)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d task requests, want the task and one follow-on", n)
	}
	if got := s.ran(); len(got) != 2+2*calls+1 {
		t.Errorf("server ran %d calls, want %d", len(got), 2+2*calls+1)
	}
}
