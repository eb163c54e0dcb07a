package policy_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/policy"
)

var git = &broker.Resource{URI: "https://git.example", Scopes: []broker.Scope{
	{Name: "contents:read", Risk: broker.RiskLow},
	{Name: "pulls:write", Risk: broker.RiskMedium},
	{Name: "contents:write", Risk: broker.RiskHigh},
	{Name: "secrets:read", Risk: broker.RiskCritical},
}}

// input builds a policy input for an agent asking for scopes at git.
func input(agent string, ttl time.Duration, scopes ...string) broker.PolicyInput {
	return broker.PolicyInput{
		Request: &broker.TaskRequest{ID: "r1", AgentID: agent, LoginHint: "oncall", Intent: "do the task",
			Terms: broker.Terms{Scopes: scopes, Resource: git.URI, TTL: ttl}},
		Agent:    &broker.Agent{ID: agent, Name: agent + " name", Owner: "team@example"},
		Resource: git,
		Now:      time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	}
}

func followOn(in broker.PolicyInput, parentScopes ...string) broker.PolicyInput {
	in.Request.ParentID = "p1"
	if parentScopes != nil {
		in.Parent = &broker.Grant{ID: "g1", Terms: broker.Terms{Scopes: parentScopes, Resource: git.URI, TTL: time.Hour}}
	}
	return in
}

func mustParse(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	example, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		policy *policy.Policy
		in     broker.PolicyInput
		// want
		verdict   string
		risk      broker.Risk
		maxTTL    time.Duration
		approvals int
		rule      string
		trace     []string // each must be in the trace
	}{
		{name: "nothing matches", policy: example, in: input("release-bot", time.Hour, "contents:write"),
			verdict: broker.VerdictReview, risk: broker.RiskHigh, trace: []string{"risk: highest action risk is high", "verdict: review by an operator"}},
		{name: "deny with reason", policy: example, in: input("triage-bot", time.Hour, "contents:read", "secrets:read"),
			verdict: broker.VerdictDeny, risk: broker.RiskCritical, rule: "triage-never-reads-secrets",
			trace: []string{"rule triage-never-reads-secrets → deny", "verdict: deny by rule triage-never-reads-secrets"}},
		{name: "triage without secrets is reviewed", policy: example, in: input("triage-bot", time.Hour, "contents:read"),
			verdict: broker.VerdictReview, risk: broker.RiskLow},
		{name: "auto-approve low risk", policy: example, in: input("docs-bot", time.Hour, "contents:read"),
			verdict: broker.VerdictAutoApprove, risk: broker.RiskLow, rule: "docs-bot-reads-docs",
			trace: []string{"rule docs-bot-reads-docs → auto_approve", "verdict: auto-approve by rule docs-bot-reads-docs"}},
		{name: "auto rule does not match wider asks", policy: example, in: input("docs-bot", time.Hour, "contents:read", "pulls:write"),
			verdict: broker.VerdictReview, risk: broker.RiskMedium},
		{name: "openid does not spoil an auto-approval", policy: example, in: input("docs-bot", time.Hour, "openid", "contents:read"),
			verdict: broker.VerdictAutoApprove, risk: broker.RiskLow},
		{name: "widening follow-on labelled high, so never auto-approved", policy: example,
			in:      followOn(input("docs-bot", time.Hour, "contents:read"), "pulls:write"),
			verdict: broker.VerdictReview, risk: broker.RiskHigh,
			trace: []string{"rule widening-follow-on → label high", "auto_approve of rule docs-bot-reads-docs ignored: the request is high risk"}},
		{name: "follow-on within its parent", policy: example, in: followOn(input("docs-bot", time.Minute, "contents:read"), "contents:read"),
			verdict: broker.VerdictAutoApprove, risk: broker.RiskLow, trace: []string{"follow-on stays within its parent grant"}},
		{name: "follow-on of a task never granted", policy: example, in: followOn(input("release-bot", time.Hour, "contents:read")),
			verdict: broker.VerdictReview, risk: broker.RiskHigh, trace: []string{"rule widening-follow-on → label high"}},
		{name: "two approvals", policy: example, in: input("rotator", time.Hour, "secrets:rotate"),
			verdict: broker.VerdictReview, risk: broker.RiskCritical, approvals: 2, // unknown scope at git: critical
			trace: []string{"rule two-person-secret-rotation → require_approvals 2", "verdict: review by 2 distinct operators"}},
		{name: "max ttl", policy: example, in: input("support", time.Hour, "refunds:create"),
			verdict: broker.VerdictReview, risk: broker.RiskCritical, maxTTL: 10 * time.Minute, trace: []string{"rule short-refunds → max_ttl 10m"}},
		{name: "deny wins over auto-approve", policy: mustParse(t, `rules:
  - {name: auto, when: 'true', effect: {auto_approve: true}}
  - {name: no, when: 'agent.owner == "team@example"', effect: {deny: true}}
  - {name: long, when: 'true', effect: {max_ttl: 5m, label: medium}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictDeny, rule: "no", risk: broker.RiskMedium,
			trace: []string{"rule auto → auto_approve", "rule no → deny", "rule long → max_ttl 5m, label medium", "verdict: deny by rule no"}},
		{name: "strictest ttl and most approvals win", policy: mustParse(t, `rules:
  - {name: a, when: 'true', effect: {max_ttl: 30m, require_approvals: 3}}
  - {name: b, when: 'true', effect: {max_ttl: 10m, require_approvals: 2}}
  - {name: c, when: 'false', effect: {max_ttl: 1m}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskLow, maxTTL: 10 * time.Minute, approvals: 3},
		{name: "auto-approve ignored when approvals required", policy: mustParse(t, `rules:
  - {name: auto, when: 'true', effect: {auto_approve: true}}
  - {name: two, when: 'true', effect: {require_approvals: 2}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskLow, approvals: 2,
			trace: []string{"auto_approve of rule auto ignored: policy requires 2 approvals"}},
		{name: "auto-approve never for high catalogue risk", policy: mustParse(t, `rules:
  - {name: auto, when: 'true', effect: {auto_approve: true}}
`), in: input("a", time.Hour, "contents:write"), verdict: broker.VerdictReview, risk: broker.RiskHigh,
			trace: []string{"auto_approve of rule auto ignored: the request is high risk"}},
		{name: "auto-approve never when labelled critical", policy: mustParse(t, `rules:
  - {name: auto, when: 'true', effect: {auto_approve: true, max_ttl: 5m}}
  - {name: crit, when: 'request.intent.contains("task")', effect: {label: critical}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskCritical, maxTTL: 5 * time.Minute},
		{name: "auto-approve not for medium risk", policy: mustParse(t, `rules:
  - {name: auto, when: 'true', effect: {auto_approve: true}}
`), in: input("a", time.Hour, "pulls:write"), verdict: broker.VerdictReview, risk: broker.RiskMedium,
			trace: []string{"only low-risk requests are approved without a person"}},
		{name: "labels raise, never lower", policy: mustParse(t, `rules:
  - {name: low, when: 'true', effect: {label: low}}
`), in: input("a", time.Hour, "contents:write"), verdict: broker.VerdictReview, risk: broker.RiskHigh},
		{name: "variables", policy: mustParse(t, `rules:
  - name: all
    when: >-
      request.agent == "a" && agent.id == "a" && agent.name == "a name" && agent.owner == "team@example" &&
      request.intent == "do the task" && request.resource == "https://git.example" && request.ttl_seconds == 3600 &&
      request.login_hint == "oncall" && !request.follow_on && parent == {} &&
      now == timestamp("2026-11-26T09:00:00Z") && now.getHours("UTC") == 9 &&
      request.details.exists(d, d.type == "t" && "read" in d.actions && d.identifier == "acme/web" &&
        d.locations == ["https://git.example/repos/acme/web"])
    effect: {label: critical}
`), in: func() broker.PolicyInput {
			in := input("a", time.Hour, "contents:read")
			in.Request.Terms.Details = []broker.AuthorizationDetail{{Type: "t", Actions: []string{"read"}, Identifier: "acme/web",
				Locations: []string{"https://git.example/repos/acme/web"}}}
			return in
		}(), verdict: broker.VerdictReview, risk: broker.RiskCritical, trace: []string{"rule all → label critical"}},
		{name: "parent variables", policy: mustParse(t, `rules:
  - name: p
    when: 'parent.scopes == ["contents:read"] && parent.resource == "https://git.example" && parent.ttl_seconds == 3600'
    effect: {label: critical}
`), in: followOn(input("a", time.Minute, "contents:read"), "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskCritical},
		{name: "evaluation error counts a restricting rule as matched", policy: mustParse(t, `rules:
  - {name: broken-deny, when: 'parent.scopes.size() > 0', effect: {deny: true, reason: parent check}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictDeny, rule: "broken-deny", risk: broker.RiskLow,
			trace: []string{"rule broken-deny could not be evaluated (no such key: scopes): counted as matched → deny"}},
		{name: "evaluation error never auto-approves", policy: mustParse(t, `rules:
  - {name: broken-auto, when: 'parent.scopes.size() == 0', effect: {auto_approve: true, max_ttl: 5m}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskLow, maxTTL: 5 * time.Minute,
			trace: []string{"rule broken-auto could not be evaluated (no such key: scopes): counted as matched → max_ttl 5m"}},
		{name: "evaluation error of auto-approve only", policy: mustParse(t, `rules:
  - {name: broken-auto, when: 'parent.scopes.size() == 0', effect: {auto_approve: true}}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskLow,
			trace: []string{"rule broken-auto could not be evaluated (no such key: scopes): not applied"}},
		{name: "cost limit", policy: mustParse(t, `rules:
  - name: expensive
    when: >-
      [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c,
      [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a + b + c + d + e > 0)))))
    effect: {label: critical}
`), in: input("a", time.Hour, "contents:read"), verdict: broker.VerdictReview, risk: broker.RiskCritical,
			trace: []string{"rule expensive could not be evaluated (exceeded the cost limit of 100000): counted as matched → label critical"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "cost limit" {
				// The cost limit, not the clock, must stop it.
				policy.RaiseEvalTimeout(t, time.Minute)
			}
			before := *tt.in.Request
			got := tt.policy.Evaluate(context.Background(), tt.in)
			if got.Verdict != tt.verdict || got.Risk != tt.risk || got.MaxTTL != tt.maxTTL || got.RequireApprovals != tt.approvals {
				t.Errorf("got verdict %s, risk %s, max_ttl %s, approvals %d\nwant %s, %s, %s, %d\ntrace:\n  %s",
					got.Verdict, got.Risk, got.MaxTTL, got.RequireApprovals, tt.verdict, tt.risk, tt.maxTTL, tt.approvals,
					strings.Join(got.Trace, "\n  "))
			}
			if tt.rule != "" && got.Rule != tt.rule {
				t.Errorf("rule = %q, want %q", got.Rule, tt.rule)
			}
			if got.AutoApprove != (tt.verdict == broker.VerdictAutoApprove) {
				t.Errorf("AutoApprove = %v with verdict %s", got.AutoApprove, got.Verdict)
			}
			for _, want := range tt.trace {
				if !containsLine(got.Trace, want) {
					t.Errorf("trace lacks %q:\n  %s", want, strings.Join(got.Trace, "\n  "))
				}
			}
			if last := got.Trace[len(got.Trace)-1]; !strings.HasPrefix(last, "verdict: ") {
				t.Errorf("the trace ends with %q, not the verdict", last)
			}
			if tt.in.Request.Terms.TTL != before.Terms.TTL || len(tt.in.Request.Terms.Scopes) != len(before.Terms.Scopes) {
				t.Error("Evaluate changed its input")
			}
		})
	}
}

func containsLine(trace []string, want string) bool {
	for _, l := range trace {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// TestEvaluateCancelled: a cancelled evaluation fails toward less access.
func TestEvaluateCancelled(t *testing.T) {
	p := mustParse(t, "rules:\n  - {name: r, when: 'request.scopes.exists(s, s == \"x\")', effect: {deny: true}}\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := p.Evaluate(ctx, input("a", time.Hour, "contents:read"))
	if got.Verdict != broker.VerdictDeny || !containsLine(got.Trace, "could not be evaluated") {
		t.Errorf("cancelled evaluation: %s\n  %s", got.Verdict, strings.Join(got.Trace, "\n  "))
	}
}

// TestEvaluateConcurrently: a Policy is shared by every submission.
func TestEvaluateConcurrently(t *testing.T) {
	p, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				agent := []string{"docs-bot", "triage-bot"}[i%2]
				got := p.Evaluate(context.Background(), input(agent, time.Hour, "contents:read", "secrets:read"))
				if agent == "triage-bot" && got.Verdict != broker.VerdictDeny {
					t.Errorf("triage-bot not denied: %v", got.Trace)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkEvaluate(b *testing.B) {
	p, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	in := followOn(input("docs-bot", time.Minute, "contents:read"), "contents:read")
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(context.Background(), in)
	}
}
