package tui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store/storetest"
)

// rulesPolicy is a policy for console flows: what broker/policy would
// decide for a rule that matches every request, without compiling CEL.
type rulesPolicy struct {
	approvals   int
	autoApprove bool
}

func (p rulesPolicy) Evaluate(_ context.Context, in broker.PolicyInput) broker.PolicyResult {
	res := broker.Baseline(in)
	res.RequireApprovals = p.approvals
	if p.autoApprove && res.Risk == broker.RiskLow {
		res.Verdict, res.Rule, res.AutoApprove = broker.VerdictAutoApprove, "reads", true
	}
	res.Trace = append(res.Trace, "verdict: "+res.Verdict)
	return res
}

func realBrokerWithPolicy(t *testing.T, p broker.Policy) (*broker.Service, *clock) {
	t.Helper()
	c := &clock{t: fixedNow}
	svc, err := broker.New(t.Context(), fixtureConfig(), storetest.MustOpen(t), broker.Options{
		Issuer: "https://writ.test", Now: c.Now, SubmitBurst: 100, SubmitRate: 100, Policy: p,
	})
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	return svc, c
}

// The two-person rule: the first approval is recorded and the request
// stays, showing its count; the same operator cannot approve again; a
// second operator's approval grants it.
func TestFlowTwoPersonRule(t *testing.T) {
	svc, c := realBrokerWithPolicy(t, rulesPolicy{approvals: 2})
	r := submit(t, svc, "reader-bot", "read the onboarding guide", "https://api.github.com", 5*time.Minute, "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 200, 40)
	f.waitShow("approvals 0/2 · read the", "Approvals 0/2 · needs 2 distinct operators")
	f.keys("a")
	f.waitShow("approval 1 of 2 recorded · another operator must approve")
	f.waitShow("approvals 1/2 · read the", "Approvals 1/2 · another operator must approve",
		"✓ Priya Raman <priya@example.com> approved as asked")
	if gs, _ := svc.Grants(context.Background(), 0); len(gs) != 0 {
		t.Fatalf("one approval of two granted %d", len(gs))
	}
	f.keys("a")
	f.waitShow("you already approved this request (approval 1 of 2): another operator must approve it")
	f.keys("n")
	f.waitShow("you already approved this request")
	bob := broker.Operator{Issuer: "https://idp.example.com", Subject: "bob", Name: "Bob"}
	if g, err := svc.Approve(context.Background(), bob, r.ID); err != nil || g == nil {
		t.Fatalf("second approval: %v, %v", g, err)
	}
	f.waitShow("Pending 0")
	f.keys("2")
	f.waitShow("ACTIVE", "reader-bot")
}

// A second approver's narrow editor starts from the first approver's terms.
func TestFlowSecondApproverNarrowsTheProposal(t *testing.T) {
	svc, c := realBrokerWithPolicy(t, rulesPolicy{approvals: 2})
	r := submit(t, svc, "release-bot", "open PR fixing CVE-2026-1234", "https://api.github.com", time.Hour,
		"contents:write", "workflows:write")
	bob := broker.Operator{Issuer: "https://idp.example.com", Subject: "bob", Name: "Bob"}
	if _, err := svc.Narrow(context.Background(), bob, r.ID, broker.Terms{Scopes: []string{"contents:write"},
		Resource: "https://api.github.com", TTL: 30 * time.Minute}, "no workflows"); err != nil {
		t.Fatal(err)
	}
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 200, 40)
	f.waitShow("approvals 1/2", "✓ Bob narrowed to contents:write for 30m")
	f.keys("n")
	f.waitShow("narrowing what Bob approved", "(approved 30m)")
	f.waitGone("[x] scope  [CRIT] workflows:write")
	f.keys("enter")
	f.waitShow("approved release-bot's request as asked")
	gs, _ := svc.Grants(context.Background(), 0)
	if len(gs) != 1 || gs[0].Terms.TTL != 30*time.Minute || len(gs[0].Terms.Scopes) != 1 {
		t.Fatalf("grants %+v", gs)
	}
}

// A request policy approves as it arrives never rings the bell and never
// lingers in the queue.
func TestFlowAutoApprovedArrival(t *testing.T) {
	svc, c := realBrokerWithPolicy(t, rulesPolicy{autoApprove: true})
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c), Notify: NotifyOSC9}, 200, 40)
	f.waitShow("No requests waiting")
	f.tm.Send(tea.BlurMsg{})
	submit(t, svc, "reader-bot", "read docs", "https://api.github.com", 5*time.Minute, "contents:read")
	submit(t, svc, "release-bot", "push the tag", "https://api.github.com", 5*time.Minute, "contents:write")
	var out []byte
	teatest.WaitFor(t, f.tm.Output(), func(b []byte) bool {
		out = append(out, b...)
		return bytes.Contains(out, []byte("\x1b]9;writ: release-bot asks for approval\x07"))
	}, teatest.WithDuration(guard))
	if bytes.Contains(out, []byte("reader-bot asks for approval")) {
		t.Error("a request policy approved on arrival notified the operator")
	}
	f.waitShow("push the tag", "Pending 1")
	if s := f.p.current(); strings.Contains(s, "read docs") {
		t.Errorf("the auto-approved request is in the queue:\n%s", s)
	}
	f.keys("2")
	f.waitShow("policy rule reads")
}

// A policy file that does not reload is shown until a good one does.
func TestFlowPolicyBanner(t *testing.T) {
	svc, c := realBroker(t)
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 120, 30)
	f.waitShow("No requests waiting")
	f.tm.Send(PolicyMsg{File: "policy.yaml", Rules: 4, Err: errors.New("policy.yaml:7: rules[1] (x).when: column 3: Syntax error\x1b[31m")})
	f.waitShow("POLICY NOT RELOADED (the last good policy stays in force): policy.yaml:7: rules[1] (x).when: column 3: Syntax error")
	f.tm.Send(PolicyMsg{File: "policy.yaml", Rules: 5})
	f.waitGone("POLICY NOT RELOADED")
	f.waitShow("policy reloaded from policy.yaml: 5 rules")
}

// Events for requests policy auto-approves: the submission joins no
// queue; an auto-approval that did not take effect (EventRequestUpdated)
// brings the request to a person after all; a refusal changes no queue.
func TestAutoApprovalEvents(t *testing.T) {
	fx := newFixture()
	s := newSync(t, fx.backend(), Options{}, 160, 40)
	before := len(s.m.a.d.pending)
	r := req("auto-1", "reader-bot", "read the runbook", "https://api.github.com", 0, 5*time.Minute, "contents:read")
	r.Policy = &broker.PolicyResult{Verdict: broker.VerdictAutoApprove, AutoApprove: true, Rule: "reads", Risk: broker.RiskLow,
		Trace: []string{"verdict: auto-approve by rule reads, no person needed"}}
	s.send(eventsMsg{events: []broker.Event{{Kind: broker.EventRequestSubmitted, Request: r}}})
	if len(s.m.a.d.pending) != before || strings.Contains(s.screen(), "read the runbook") {
		t.Fatalf("an auto-approved submission joined the queue:\n%s", s.screen())
	}
	failed := *r
	failed.Policy = &broker.PolicyResult{Verdict: broker.VerdictReview, Risk: broker.RiskLow,
		Trace: []string{"verdict: auto-approve by rule reads, no person needed", "auto_approve did not take effect (issuance is frozen): an operator decides"}}
	s.send(eventsMsg{events: []broker.Event{{Kind: broker.EventRequestUpdated, Request: &failed}}})
	if len(s.m.a.d.pending) != before+1 {
		t.Fatalf("the request an auto-approval failed for is not in the queue (%d pending)", len(s.m.a.d.pending))
	}
	s.mustShow("NEW read the runbook")
	refused := req("refused-1", "release-bot", "read the secrets", "https://api.github.com", 0, 5*time.Minute, "secrets:read")
	s.send(eventsMsg{events: []broker.Event{{Kind: broker.EventRequestRefused, Request: refused}}})
	if len(s.m.a.d.pending) != before+1 || strings.Contains(s.screen(), "read the secrets") {
		t.Fatal("a refused request joined the queue")
	}
}
