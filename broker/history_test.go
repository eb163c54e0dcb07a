package broker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

func TestHistoryWindowEdges(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	req := &broker.TaskRequest{AgentID: "a"}
	h := broker.NewHistory()
	for _, at := range []time.Time{
		t0.Add(-24 * time.Hour),                 // exactly a day before t0: out of the day
		t0.Add(-24*time.Hour + time.Nanosecond), // just inside the day
		t0.Add(-time.Hour),                      // exactly an hour before: out of the hour, in the day
		t0.Add(-time.Hour + time.Nanosecond),    // just inside the hour
		t0,                                      // now: inside both
		t0.Add(time.Nanosecond),                 // after now: not yet
	} {
		h.Observe(broker.Event{Kind: broker.EventRequestRefused, At: at, Request: req})
	}
	tests := []struct {
		name      string
		now       time.Time
		hour, day int
	}{
		{"at t0", t0, 2, 4},
		// The mark an hour less a nanosecond before t0 is now exactly an
		// hour old, and has left the hour; the one after t0 has arrived.
		{"a nanosecond later", t0.Add(time.Nanosecond), 2, 4},
		{"an hour later", t0.Add(time.Hour), 1, 4},
		{"a day later", t0.Add(24 * time.Hour), 0, 1},
		{"a day and a nanosecond later", t0.Add(24*time.Hour + time.Nanosecond), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.Of("a", tt.now)
			if got.Hour.Refusals != tt.hour || got.Day.Refusals != tt.day || got.Hour.Requests != tt.hour || got.Day.Requests != tt.day {
				t.Fatalf("hour %+v day %+v, want %d and %d", got.Hour, got.Day, tt.hour, tt.day)
			}
		})
	}
	if got := h.Of("someone-else", t0); got != (broker.AgentHistory{}) {
		t.Fatalf("an agent with no history has %+v", got)
	}
}

func TestHistoryCountsEachKind(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	req := &broker.TaskRequest{AgentID: "a"}
	g1 := &broker.Grant{ID: "g1", AgentID: "a", ExpiresAt: t0.Add(30 * time.Minute)}
	g2 := &broker.Grant{ID: "g2", AgentID: "a", ExpiresAt: t0.Add(10 * time.Minute)}
	h := broker.NewHistory()
	for _, e := range []broker.Event{
		{Kind: broker.EventRequestSubmitted, At: t0, Request: req},
		{Kind: broker.EventRequestSubmitted, At: t0, Request: req},
		{Kind: broker.EventRequestSubmitted, At: t0, Request: req},
		{Kind: broker.EventRequestDecided, At: t0, Request: req, Decision: &broker.Decision{Kind: broker.DecisionDeny}},
		{Kind: broker.EventRequestDecided, At: t0, Request: req, Decision: &broker.Decision{Kind: broker.DecisionApprove}, Grant: g1},
		{Kind: broker.EventRequestDecided, At: t0, Request: req, Decision: &broker.Decision{Kind: broker.DecisionApprove}, Grant: g2},
		{Kind: broker.EventRequestRefused, At: t0, Request: req},
	} {
		h.Observe(e)
	}
	want := broker.AgentHistory{Hour: broker.HistoryCounts{Requests: 4, Denials: 1, Refusals: 1},
		Day: broker.HistoryCounts{Requests: 4, Denials: 1, Refusals: 1}, ActiveGrants: 2}
	if got := h.Of("a", t0); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// g2 expires by the clock, before its end event arrives.
	if got := h.Of("a", t0.Add(10*time.Minute)).ActiveGrants; got != 1 {
		t.Fatalf("after g2's expiry: %d active grants, want 1", got)
	}
	revoked := *g1
	revoked.State = broker.GrantRevoked
	h.Observe(broker.Event{Kind: broker.EventGrantEnded, At: t0.Add(11 * time.Minute), Grant: &revoked})
	got := h.Of("a", t0.Add(11*time.Minute))
	if got.ActiveGrants != 0 || got.Hour.Revocations != 1 {
		t.Fatalf("after the revocation: %+v", got)
	}
	h.Observe(broker.Event{Kind: broker.EventAgentRevoked, At: t0.Add(12 * time.Minute), Agent: &broker.AgentState{ID: "a"}})
	if got := h.Of("a", t0.Add(12*time.Minute)); got.Hour.Revocations != 2 {
		t.Fatalf("after revoking the agent: %+v", got)
	}
}

// The Service keeps the history from its own events and hands it to the
// policy at each submission.
func TestServiceGivesPolicyTheAgentsHistory(t *testing.T) {
	h := newHarness(t)
	var seen []broker.AgentHistory
	svc, err := broker.New(context.Background(), testConfig(), h.st, broker.Options{
		Issuer: "https://writ.example", Now: h.clock.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
		Policy: policyFunc(func(in broker.PolicyInput) broker.PolicyResult {
			if in.History == nil {
				t.Fatal("the policy got no history")
			}
			seen = append(seen, *in.History)
			return broker.DefaultPolicy{}.Evaluate(context.Background(), in)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	r1 := h.submit("release-bot", "contents:read")
	h.approve(r1.ID)
	r2 := h.submit("release-bot", "contents:write")
	if _, err := svc.Deny(h.ctx, op, r2.ID, "not today"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	h.submit("release-bot", "contents:read")
	if len(seen) != 3 {
		t.Fatalf("policy evaluated %d times", len(seen))
	}
	want := []broker.AgentHistory{
		{},
		{Hour: broker.HistoryCounts{Requests: 1}, Day: broker.HistoryCounts{Requests: 1}, ActiveGrants: 1},
		// An hour later: out of the hour, still in the day; the grant (20m) expired.
		{Day: broker.HistoryCounts{Requests: 2, Denials: 1}},
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("histories seen\n%+v\nwant\n%+v", seen, want)
	}
	// A restarted service counts the grants still active from the store.
	g := h.approve(h.submit("release-bot", "contents:read").ID)
	restarted, err := broker.New(context.Background(), testConfig(), h.st, broker.Options{Issuer: "https://writ.example", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := restarted.AgentHistory("release-bot").ActiveGrants; got != 1 {
		t.Fatalf("after restart %d active grants, want 1 (%s)", got, g.ID)
	}
}

type policyFunc func(broker.PolicyInput) broker.PolicyResult

func (f policyFunc) Evaluate(_ context.Context, in broker.PolicyInput) broker.PolicyResult {
	return f(in)
}

// effectsPolicy returns fixed effects with the default result.
type effectsPolicy struct {
	verdict string
	fx      broker.PolicyEffects
}

func (p effectsPolicy) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	r, _ := p.EvaluateEffects(ctx, in)
	return r
}

func (p effectsPolicy) EvaluateEffects(ctx context.Context, in broker.PolicyInput) (broker.PolicyResult, broker.PolicyEffects) {
	r := broker.DefaultPolicy{}.Evaluate(ctx, in)
	if p.verdict != "" {
		r.Verdict = p.verdict
	}
	return r, p.fx
}

func TestOnDenyEffectsAreAppliedAndAudited(t *testing.T) {
	for _, tt := range []struct {
		name        string
		action      string
		follow      bool
		quarantined bool
		parentState broker.GrantState
		audit       broker.AuditKind
	}{
		{"quarantine the agent", broker.OnDenyQuarantineAgent, false, true, broker.GrantRevoked, broker.AuditAgentRevoked},
		{"revoke the parent of a follow-on", broker.OnDenyRevokeParent, true, false, broker.GrantRevoked, broker.AuditGrantRevoked},
		{"revoke_parent without a parent does nothing", broker.OnDenyRevokeParent, false, false, broker.GrantActive, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			parent := h.approve(h.submit("release-bot", "contents:read").ID)
			req := &broker.TaskRequest{ID: "req-denied", AgentID: "release-bot"}
			var p *broker.Grant
			if tt.follow {
				req.ParentID, p = parent.RequestID, parent
			}
			fx := broker.PolicyEffects{OnDeny: []broker.OnDenyEffect{{Action: tt.action, Rule: "strict"}}}
			broker.ApplyOnDeny(h.svc, h.ctx, req, fx, p)
			views := h.svc.Agents()
			i := slices.IndexFunc(views, func(v broker.AgentView) bool { return v.Agent.ID == "release-bot" })
			if views[i].State.Quarantined != tt.quarantined {
				t.Fatalf("quarantined = %v, want %v", views[i].State.Quarantined, tt.quarantined)
			}
			g, err := h.svc.Grant(h.ctx, parent.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st := h.svc.EffectiveState(g); st != tt.parentState {
				t.Fatalf("parent grant %s, want %s", st, tt.parentState)
			}
			entries, err := h.svc.Audit(h.ctx, broker.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range entries {
				if e.Kind == tt.audit && e.Operator != nil && e.Operator.Subject == "policy:strict" &&
					strings.Contains(e.Message+string(e.Data), "on_deny of policy rule strict") {
					found = true
				}
			}
			if found != (tt.audit != "") {
				t.Fatalf("audit entry %s by policy:strict found = %v", tt.audit, found)
			}
		})
	}
}

func TestApplyDropActionsNarrowsAndTraces(t *testing.T) {
	req := &broker.TaskRequest{Terms: broker.Terms{Scopes: []string{"openid", "contents:read", "contents:write", "read", "refund"},
		Details: []broker.AuthorizationDetail{{Type: "payment", Actions: []string{"refund"}}, {Type: "doc", Actions: []string{"read", "refund"}}}}}
	pr := &broker.PolicyResult{Trace: []string{"rule r → drop_actions contents:write refund", "verdict: review by an operator"}}
	broker.ApplyDropActions(req, pr, broker.PolicyEffects{DropActions: []string{"contents:write", "refund"}, DropRules: []string{"r"}})
	if !slices.Equal(req.Terms.Scopes, []string{"openid", "contents:read", "read"}) || len(req.Terms.Details) != 1 ||
		!slices.Equal(req.Terms.Details[0].Actions, []string{"read"}) {
		t.Fatalf("narrowed to %+v", req.Terms)
	}
	want := []string{"rule r → drop_actions contents:write refund", "narrowed by policy (rule r): contents:write, refund dropped", "verdict: review by an operator"}
	if !slices.Equal(pr.Trace, want) {
		t.Fatalf("trace %q", pr.Trace)
	}
}

func TestEvaluatePolicySeesEffectsThroughTheHistory(t *testing.T) {
	h := newHarness(t)
	fx := broker.PolicyEffects{DropActions: []string{"contents:write"}, DropRules: []string{"r"}}
	svc, err := broker.New(context.Background(), testConfig(), h.st, broker.Options{Issuer: "https://writ.example", Now: h.clock.Now,
		Policy: effectsPolicy{fx: fx}})
	if err != nil {
		t.Fatal(err)
	}
	in := broker.PolicyInput{Request: &broker.TaskRequest{AgentID: "release-bot"}, Now: h.clock.Now()}
	_, got := broker.EvaluatePolicy(svc, h.ctx, in)
	if !slices.Equal(got.DropActions, fx.DropActions) {
		t.Fatalf("effects %+v, want %+v", got, fx)
	}
}

// A History rebuilt from the audit log (as replay does) agrees with the
// one the Service keeps from its events.
func TestHistoryFromTheAuditLogMatchesTheLiveOne(t *testing.T) {
	h := newHarness(t)
	svc, err := broker.New(context.Background(), testConfig(), h.st, broker.Options{
		Issuer: "https://writ.example", Now: h.clock.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
		Policy: policyFunc(func(in broker.PolicyInput) broker.PolicyResult {
			res := broker.DefaultPolicy{}.Evaluate(context.Background(), in)
			if slices.Contains(in.Request.Terms.Scopes, "pulls:write") {
				res.Verdict, res.Rule = broker.VerdictDeny, "no-pulls"
			}
			return res
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	g1 := h.approve(h.submit("release-bot", "contents:read").ID)
	h.clock.Advance(time.Minute)
	h.approve(h.submit("release-bot", "contents:read").ID)
	if _, err := svc.Deny(h.ctx, op, h.submit("release-bot", "contents:write").ID, "no"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"pulls:write"},
		Resource: gitURI, TTL: time.Minute}); err == nil {
		t.Fatal("the policy let pulls:write through")
	}
	h.clock.Advance(time.Minute)
	if _, err := svc.Revoke(h.ctx, op, g1.ID, "done"); err != nil {
		t.Fatal(err)
	}
	h.approve(h.submit("support", "refunds:create").ID)
	h.clock.Advance(time.Minute)
	if _, err := svc.RevokeAgent(h.ctx, op, "support", "suspicious", false); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	rebuilt := broker.NewHistory()
	err = h.st.View(h.ctx, func(tx broker.TxReader) error {
		return tx.ForEachAudit(1, func(e *broker.AuditEntry) error {
			var exp time.Time
			if e.GrantID != "" && e.Kind == broker.AuditDecision {
				g, err := tx.Grant(e.GrantID)
				if err != nil {
					return err
				}
				exp = g.ExpiresAt
			}
			rebuilt.ObserveAudit(e, exp)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, agent := range []string{"release-bot", "support"} {
		live, again := svc.AgentHistory(agent), rebuilt.Of(agent, h.clock.Now())
		if live != again {
			t.Errorf("%s: live %+v, from the audit log %+v", agent, live, again)
		}
	}
	if got := svc.AgentHistory("release-bot"); got.Hour != (broker.HistoryCounts{Requests: 4, Denials: 1, Refusals: 1, Revocations: 1}) || got.ActiveGrants != 1 {
		t.Errorf("release-bot %+v", got)
	}
}
