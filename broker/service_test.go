package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	gitURI     = "https://git.example"
	billingURI = "https://billing.example"
)

func testConfig() *broker.Config {
	return &broker.Config{
		Limits: broker.Limits{DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: 10 * time.Minute},
		Resources: []broker.Resource{
			{URI: gitURI, Scopes: []broker.Scope{
				{Name: "contents:read", Description: "read", Risk: broker.RiskLow},
				{Name: "contents:write", Description: "push", Risk: broker.RiskHigh},
				{Name: "pulls:write", Description: "PRs", Risk: broker.RiskMedium},
				{Name: "secrets:read", Description: "secrets", Risk: broker.RiskCritical},
			}},
			{URI: billingURI, Scopes: []broker.Scope{
				{Name: "refunds:create", Description: "refund", Risk: broker.RiskHigh},
			}},
		},
		Agents: []broker.Agent{
			{ID: "release-bot", Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read", "contents:write", "pulls:write"}}}},
			{ID: "support", MaxTTL: 30 * time.Minute, Ceiling: []broker.CeilingEntry{{Resource: billingURI, Scopes: []string{"refunds:create"}}}},
		},
	}
}

var op = broker.Operator{Issuer: "https://idp.example", Subject: "priya", Email: "priya@example.com", EmailVerified: true}

type harness struct {
	t     testing.TB
	svc   *broker.Service
	st    broker.Store
	clock *clock
	ctx   context.Context
}

// newHarness runs a Service over the in-memory store: the domain tests
// need the store's semantics, not its disk. Tests of crashes and restarts
// open the bbolt store themselves.
func newHarness(t testing.TB) *harness {
	t.Helper()
	st := brokertest.NewStore()
	c := newClock()
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{
		Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, svc: svc, st: st, clock: c, ctx: context.Background()}
}

func (h *harness) submit(agent string, scopes ...string) *broker.TaskRequest {
	h.t.Helper()
	res := gitURI
	if agent == "support" {
		res = billingURI
	}
	r, err := h.svc.Submit(h.ctx, agent, broker.SubmitInput{LoginHint: "oncall", Intent: "open PR fixing CVE-2026-1234",
		Scopes: scopes, Resource: res, TTL: 20 * time.Minute})
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return r
}

func (h *harness) approve(id string) *broker.Grant {
	h.t.Helper()
	g, err := h.svc.Approve(h.ctx, op, id)
	if err != nil {
		h.t.Fatalf("approve: %v", err)
	}
	return g
}

func (h *harness) redeem(agent, id string) *broker.IssuedToken {
	h.t.Helper()
	tok, err := h.svc.Redeem(h.ctx, agent, id, "jkt-1")
	if err != nil {
		h.t.Fatalf("redeem: %v", err)
	}
	return tok
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if broker.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, broker.ErrorCode(err), code)
	}
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if broker.ErrorReason(err) != reason {
		t.Fatalf("error %v: reason %q, want %q", err, broker.ErrorReason(err), reason)
	}
}

// newHarnessWith is newHarness with another configuration.
func newHarnessWith(t testing.TB, cfg *broker.Config) *harness {
	t.Helper()
	st := brokertest.NewStore()
	c := newClock()
	svc, err := broker.New(context.Background(), cfg, st, broker.Options{
		Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, svc: svc, st: st, clock: c, ctx: context.Background()}
}
