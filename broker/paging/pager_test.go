package paging

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a test endpoint that fails its first `fail` calls.
type receiver struct {
	mu     sync.Mutex
	fail   int
	calls  int
	bodies []map[string]any
	srv    *httptest.Server
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.calls <= r.fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("a page that is not JSON: %q", b)
		}
		r.bodies = append(r.bodies, m)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const gitURI = "https://git.acme.example"

func newBroker(t *testing.T, c *clock) *broker.Service {
	k, err := agent.GenerateKey("release-bot", jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &broker.Config{
		Limits:    broker.Limits{DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: time.Hour},
		Approvers: []string{"oncall", "leads"},
		Resources: []broker.Resource{{URI: gitURI, Scopes: []broker.Scope{{Name: "contents:read", Risk: broker.RiskLow}}}},
		Agents: []broker.Agent{{ID: "release-bot", Keys: []jose.JSONWebKey{k.PublicJWK()},
			Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read"}}}}},
	}
	svc, err := broker.New(context.Background(), cfg, storetest.MustOpen(t), broker.Options{Issuer: "https://writ.test", Now: c.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func start(t *testing.T, cfg *Config, svc *broker.Service, c *clock) *Pager {
	p := New(cfg, svc, Options{Now: c.Now, Interval: time.Hour, Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func TestPagingRetriesEscalatesAndAutoDenies(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	svc := newBroker(t, c)
	hook := newReceiver(t, 2) // fails twice, then recovers
	pd := newReceiver(t, 0)
	slack := newReceiver(t, 0)
	t.Setenv("TEST_PD_KEY", "pd-routing-key")
	cfg, err := Parse("paging.yaml", []byte(`
notify_after: 2m
escalate_after: 10m
escalate_to: leads
auto_deny_after: 30m
console_hint: writ console --server https://writ.example.com
queues:
  oncall:
    - {kind: webhook, url: `+hook.srv.URL+`}
    - {kind: pagerduty, url: `+pd.srv.URL+`, routing_key_env: TEST_PD_KEY}
  leads:
    - {kind: slack, url: `+slack.srv.URL+`}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, cfg, svc, c)
	intent := "Deploy <!channel> \x1b[31mnow\u202e " + strings.Repeat("x", 500)
	req, err := svc.Submit(context.Background(), "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: intent,
		Scopes: []string{"contents:read"}, Resource: gitURI})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	p.Tick(ctx)
	c.Advance(time.Minute)
	p.Tick(ctx)
	if len(hook.got())+len(pd.got())+len(slack.got()) != 0 {
		t.Fatal("paged before notify_after")
	}

	c.Advance(time.Minute) // 2m: page the queue
	p.Tick(ctx)
	waitFor(t, "the webhook page after its receiver recovered", func() bool { return len(hook.got()) == 1 })
	waitFor(t, "the PagerDuty trigger", func() bool { return len(pd.got()) == 1 })
	p.Tick(ctx) // a second check pages nobody again
	if w := hook.got()[0]; w["event"] != "writ.request.waiting" || w["queue"] != "oncall" || w["agent"] != "release-bot" {
		t.Errorf("webhook page: %v", w)
	}
	if tr := pd.got()[0]; tr["event_action"] != "trigger" || tr["routing_key"] != "pd-routing-key" {
		t.Errorf("PagerDuty trigger: %v", tr)
	}
	if len(slack.got()) != 0 {
		t.Fatal("escalated before escalate_after")
	}

	c.Advance(8 * time.Minute) // 10m: escalate
	p.Tick(ctx)
	waitFor(t, "the escalation to the second queue", func() bool { return len(slack.got()) == 1 })
	text := slack.got()[0]["text"].(string)
	if !strings.Contains(text, "escalated to leads") || strings.Contains(text, "<!channel>") || !strings.Contains(text, "&lt;!channel&gt;") {
		t.Errorf("slack text not escaped or not an escalation: %q", text)
	}

	c.Advance(20 * time.Minute) // 30m: auto-deny
	p.Tick(ctx)
	waitFor(t, "the request denied by escalation", func() bool {
		r, err := svc.Request(ctx, req.ID)
		return err == nil && r.State == broker.RequestDenied
	})
	r, _ := svc.Request(ctx, req.ID)
	d, err := svc.Decision(ctx, r.DecisionID)
	if err != nil || d.Operator.ID() != Escalation.ID() || !strings.Contains(d.Reason, "no operator decided within 30m") {
		t.Fatalf("decision %+v err %v", d, err)
	}
	es, err := svc.Audit(ctx, broker.AuditFilter{Kinds: []broker.AuditKind{broker.AuditDecision}})
	if err != nil || len(es) != 1 || es[0].Actor != "operator:writ|escalation" {
		t.Fatalf("audit: %+v %v", es, err)
	}
	waitFor(t, "the PagerDuty resolve", func() bool { return len(pd.got()) == 2 })
	waitFor(t, "the webhook and slack resolves", func() bool { return len(hook.got()) == 2 && len(slack.got()) == 2 })
	if res := pd.got()[1]; res["event_action"] != "resolve" || res["dedup_key"] != pd.got()[0]["dedup_key"] {
		t.Errorf("PagerDuty resolve %v does not match its trigger %v", res, pd.got()[0])
	}
	if res := hook.got()[1]; res["event"] != "writ.request.resolved" || !strings.Contains(res["outcome"].(string), "denied by writ escalation") {
		t.Errorf("webhook resolve: %v", res)
	}

	// No page carries the request id (the agent's poll handle), the full
	// intent, or a control or bidi character.
	for _, rc := range []*receiver{hook, pd, slack} {
		for _, b := range rc.got() {
			raw, _ := json.Marshal(b)
			s := string(raw)
			if strings.Contains(s, req.ID) || strings.Contains(s, strings.Repeat("x", 300)) ||
				strings.ContainsAny(s, "\x1b\u202e") || strings.Contains(s, `\u001b`) || strings.Contains(s, `\u202e`) {
				t.Errorf("unsafe page: %s", s)
			}
		}
	}
}

func TestPageResolvedWhenAnOperatorDecides(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	svc := newBroker(t, c)
	hook := newReceiver(t, 0)
	cfg := &Config{NotifyAfter: time.Minute, Queues: map[string][]Receiver{"oncall": {{Kind: KindWebhook, URL: hook.srv.URL}}}}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	p := start(t, cfg, svc, c)
	req, err := svc.Submit(context.Background(), "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "read",
		Scopes: []string{"contents:read"}, Resource: gitURI})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	p.Tick(context.Background())
	waitFor(t, "the page", func() bool { return len(hook.got()) == 1 })
	if _, err := svc.Approve(context.Background(), broker.Operator{Issuer: "https://idp.test", Subject: "dana", Name: "Dana"}, req.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolve", func() bool { return len(hook.got()) == 2 })
	if got := hook.got()[1]; got["outcome"] != "approved by Dana" {
		t.Errorf("resolve: %v", got)
	}
}

func TestConfigRefusals(t *testing.T) {
	t.Setenv("EMPTY_KEY", "")
	for _, tc := range []struct{ name, yaml, want string }{
		{"no threshold", "queues: {oncall: [{kind: webhook, url: 'https://h.test'}]}", "notify_after"},
		{"escalation before notify", "notify_after: 5m\nescalate_after: 1m\nescalate_to: x\nqueues: {oncall: [{kind: webhook, url: 'https://h.test'}]}", "later than notify_after"},
		{"escalation without a queue", "notify_after: 1m\nescalate_after: 5m\nescalate_to: leads\nqueues: {oncall: [{kind: webhook, url: 'https://h.test'}]}", "no receivers"},
		{"plain http off loopback", "notify_after: 1m\nqueues: {oncall: [{kind: webhook, url: 'http://h.test'}]}", "https"},
		{"pagerduty key in the file", "notify_after: 1m\nqueues: {oncall: [{kind: pagerduty, routing_key: abc}]}", "field routing_key not found"},
		{"pagerduty key env empty", "notify_after: 1m\nqueues: {oncall: [{kind: pagerduty, routing_key_env: EMPTY_KEY}]}", "EMPTY_KEY is empty"},
		{"unknown kind", "notify_after: 1m\nqueues: {oncall: [{kind: email, url: 'https://h.test'}]}", "want webhook, slack or pagerduty"},
		{"auto-deny too early", "notify_after: 5m\nauto_deny_after: 1m\nqueues: {oncall: [{kind: webhook, url: 'https://h.test'}]}", "auto_deny_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
