package broker_test

import (
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

func TestStandingApprovalLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	asked := broker.Terms{Scopes: []string{"contents:read", "pulls:write"}, Resource: gitURI, TTL: 15 * time.Minute}
	first := &broker.TaskRequest{ID: "req-1", AgentID: "release-bot", Terms: asked}
	reg := broker.NewStandingApprovals(time.Hour)
	sa, err := reg.Create(broker.StandingInput{ID: "sa-1", Operator: op, Request: first, Granted: asked, Risk: broker.RiskMedium,
		For: 30 * time.Minute, Reason: "release train today", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if sa.ExpiresAt != t0.Add(30*time.Minute) || sa.State(t0) != broker.StandingActive {
		t.Fatalf("created %+v", sa)
	}
	if o := sa.Operator(); o.Subject != "standing:sa-1" || o.Issuer != "writ" || o.Name != "standing approval sa-1 by priya@example.com" {
		t.Fatalf("grants it makes are approved by %+v", o)
	}
	req := func(id, agent string, ttl time.Duration, scopes ...string) *broker.TaskRequest {
		return &broker.TaskRequest{ID: id, AgentID: agent, Terms: broker.Terms{Scopes: scopes, Resource: gitURI, TTL: ttl}}
	}
	tests := []struct {
		name  string
		req   *broker.TaskRequest
		risk  broker.Risk
		at    time.Time
		match bool
	}{
		{"the same again", req("r2", "release-bot", 15*time.Minute, "contents:read", "pulls:write"), broker.RiskMedium, t0.Add(time.Minute), true},
		{"fewer actions, shorter", req("r3", "release-bot", 5*time.Minute, "contents:read"), broker.RiskLow, t0.Add(2 * time.Minute), true},
		{"one more action", req("r4", "release-bot", 15*time.Minute, "contents:read", "contents:write"), broker.RiskMedium, t0.Add(time.Minute), false},
		{"longer TTL", req("r5", "release-bot", time.Hour, "contents:read"), broker.RiskLow, t0.Add(time.Minute), false},
		{"another agent", req("r6", "docs-bot", 15*time.Minute, "contents:read"), broker.RiskLow, t0.Add(time.Minute), false},
		{"high risk by a label", req("r7", "release-bot", 15*time.Minute, "contents:read"), broker.RiskHigh, t0.Add(time.Minute), false},
		{"another resource", &broker.TaskRequest{ID: "r8", AgentID: "release-bot",
			Terms: broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI + "/sub", TTL: time.Minute}}, broker.RiskLow, t0.Add(time.Minute), false},
		{"a follow-on", &broker.TaskRequest{ID: "r9", AgentID: "release-bot", ParentID: "req-1",
			Terms: broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI, TTL: time.Minute}}, broker.RiskLow, t0.Add(time.Minute), false},
		{"expired", req("r10", "release-bot", 15*time.Minute, "contents:read"), broker.RiskLow, t0.Add(30 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reg.Match(tt.req, tt.risk, tt.at)
			if (got != nil) != tt.match {
				t.Fatalf("matched %v, want %v", got != nil, tt.match)
			}
			if got != nil {
				if err := reg.RecordUse(got.ID, tt.req.ID, tt.at); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	list := reg.List(t0.Add(3 * time.Minute))
	if len(list) != 1 || len(list[0].Uses) != 2 || list[0].Uses[1].RequestID != "r3" {
		t.Fatalf("list %+v", list)
	}
	// Revoking stops the next match at once.
	if _, err := reg.Revoke("sa-1", op, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := reg.Match(req("r11", "release-bot", time.Minute, "contents:read"), broker.RiskLow, t0.Add(4*time.Minute)); got != nil {
		t.Fatal("a revoked standing approval still approves")
	}
	if _, err := reg.Revoke("sa-1", op, t0.Add(5*time.Minute)); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := reg.Revoke("sa-none", op, t0); broker.ErrorCode(err) != broker.ENOTFOUND {
		t.Fatalf("unknown revoke: %v", err)
	}
	if st := reg.List(t0.Add(5 * time.Minute))[0].State(t0.Add(5 * time.Minute)); st != broker.StandingRevoked {
		t.Fatalf("state %s", st)
	}
}

func TestStandingApprovalRefused(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	asked := broker.Terms{Scopes: []string{"contents:read", "contents:write"}, Resource: gitURI, TTL: 15 * time.Minute}
	r := &broker.TaskRequest{ID: "req-1", AgentID: "release-bot", Terms: asked}
	follow := &broker.TaskRequest{ID: "req-2", AgentID: "release-bot", ParentID: "req-1", Terms: asked}
	wider := asked
	wider.Scopes = append([]string{"secrets:read"}, asked.Scopes...)
	reg := broker.NewStandingApprovals(time.Hour)
	for _, tt := range []struct {
		name string
		in   broker.StandingInput
		code string
	}{
		{"high risk", broker.StandingInput{ID: "a", Request: r, Granted: asked, Risk: broker.RiskHigh, For: time.Minute, Now: t0}, broker.EFORBIDDEN},
		{"critical risk", broker.StandingInput{ID: "b", Request: r, Granted: asked, Risk: broker.RiskCritical, For: time.Minute, Now: t0}, broker.EFORBIDDEN},
		{"beyond the maximum", broker.StandingInput{ID: "c", Request: r, Granted: asked, Risk: broker.RiskLow, For: 2 * time.Hour, Now: t0}, broker.EINVALID},
		{"no duration", broker.StandingInput{ID: "d", Request: r, Granted: asked, Risk: broker.RiskLow, Now: t0}, broker.EINVALID},
		{"a follow-on", broker.StandingInput{ID: "e", Request: follow, Granted: asked, Risk: broker.RiskLow, For: time.Minute, Now: t0}, broker.EINVALID},
		{"wider than the request", broker.StandingInput{ID: "f", Request: r, Granted: wider, Risk: broker.RiskLow, For: time.Minute, Now: t0}, broker.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := reg.Create(tt.in); broker.ErrorCode(err) != tt.code {
				t.Fatalf("error %v, want code %s", err, tt.code)
			}
		})
	}
	if len(reg.List(t0)) != 0 {
		t.Fatal("a refused standing approval was kept")
	}
}

func TestStandingApprovalThroughTheService(t *testing.T) {
	h := newHarness(t)
	first := h.submit("release-bot", "contents:read", "pulls:write")
	h.approve(first.ID)
	sa, err := h.svc.CreateStanding(h.ctx, op, first.ID, 30*time.Minute, "release train")
	if err != nil {
		t.Fatal(err)
	}
	// Used: the same again is approved under the standing approval, by
	// Submit itself.
	r2 := h.submit("release-bot", "contents:read")
	got := r2
	if got == nil || got.State != broker.RequestApproved {
		t.Fatalf("covered request: %+v", got)
	}
	g, err := h.svc.Grant(h.ctx, got.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Approver != sa.Operator() {
		t.Fatalf("grant approved by %+v, want the standing approval %+v", g.Approver, sa.Operator())
	}
	// Beyond it (a high-risk action): left to a person.
	r3 := h.submit("release-bot", "contents:read", "contents:write")
	if got := broker.ApproveByStanding(h.svc, h.ctx, r3); got != nil {
		t.Fatalf("a wider request was approved: %+v", got)
	}
	// Durable: a restarted service has it, with its use.
	again, err := broker.New(h.ctx, testConfig(), h.st, broker.Options{Issuer: "https://writ.example", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	list := again.StandingApprovals()
	if len(list) != 1 || list[0].ID != sa.ID || len(list[0].Uses) != 1 || list[0].Uses[0].RequestID != r2.ID {
		t.Fatalf("after restart: %+v", list)
	}
	// Revoked: the next request waits for a person; the grant it made stays.
	if _, err := h.svc.RevokeStanding(h.ctx, op, sa.ID, "train left"); err != nil {
		t.Fatal(err)
	}
	r4 := h.submit("release-bot", "contents:read")
	if got := broker.ApproveByStanding(h.svc, h.ctx, r4); got != nil {
		t.Fatal("a revoked standing approval approved a request")
	}
	if g, _ := h.svc.Grant(h.ctx, got.GrantID); h.svc.EffectiveState(g) != broker.GrantActive {
		t.Fatal("revoking the standing approval ended a grant it made")
	}
	entries, err := h.svc.Audit(h.ctx, broker.AuditFilter{Kinds: []broker.AuditKind{broker.AuditStandingCreated, broker.AuditStandingRevoked}})
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit %d entries, %v", len(entries), err)
	}
}

func TestStandingApprovalExpiresAndIsRefusedForHighRisk(t *testing.T) {
	h := newHarness(t)
	first := h.submit("release-bot", "contents:read")
	h.approve(first.ID)
	if _, err := h.svc.CreateStanding(h.ctx, op, first.ID, 10*time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Minute)
	if got := broker.ApproveByStanding(h.svc, h.ctx, h.submit("release-bot", "contents:read")); got != nil {
		t.Fatal("an expired standing approval approved a request")
	}
	high := h.submit("release-bot", "contents:write")
	h.approve(high.ID)
	if _, err := h.svc.CreateStanding(h.ctx, op, high.ID, 10*time.Minute, ""); broker.ErrorCode(err) != broker.EFORBIDDEN {
		t.Fatalf("standing approval of a high-risk request: %v", err)
	}
	pending := h.submit("release-bot", "contents:read")
	if _, err := h.svc.CreateStanding(h.ctx, op, pending.ID, 10*time.Minute, ""); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Fatalf("standing approval of a pending request: %v", err)
	}
	if _, err := h.svc.CreateStanding(h.ctx, op, first.ID, 9*time.Hour, ""); broker.ErrorCode(err) != broker.EINVALID {
		t.Fatalf("beyond the default maximum: %v", err)
	}
}
