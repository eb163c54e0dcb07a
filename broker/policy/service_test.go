package policy_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/broker/policy"
)

// These tests run each effect end to end: a real Service over the
// in-memory store, with a compiled policy, from submission to grant.

const (
	gitURI     = "https://git.example"
	billingURI = "https://billing.example"
	vaultURI   = "https://vault.example"
)

var (
	priya = broker.Operator{Issuer: "https://idp.example", Subject: "priya", Name: "Priya"}
	omar  = broker.Operator{Issuer: "https://idp.example", Subject: "omar", Name: "Omar"}
	lin   = broker.Operator{Issuer: "https://idp.example", Subject: "lin", Name: "Lin"}
	// The same subject at another issuer is another person.
	priyaElsewhere = broker.Operator{Issuer: "https://other-idp.example", Subject: "priya", Name: "Priya (other IdP)"}
)

func serviceConfig() *broker.Config {
	return &broker.Config{
		Limits: broker.Limits{DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: 10 * time.Minute},
		Resources: []broker.Resource{
			{URI: gitURI, Scopes: []broker.Scope{
				{Name: "contents:read", Description: "read", Risk: broker.RiskLow},
				{Name: "pulls:write", Description: "PRs", Risk: broker.RiskMedium},
				{Name: "contents:write", Description: "push", Risk: broker.RiskHigh},
				{Name: "secrets:read", Description: "secrets", Risk: broker.RiskCritical},
			}},
			{URI: billingURI, Scopes: []broker.Scope{
				{Name: "customers:read", Description: "customers", Risk: broker.RiskMedium},
				{Name: "refunds:create", Description: "refund", Risk: broker.RiskHigh},
			}},
			{URI: vaultURI, Scopes: []broker.Scope{
				{Name: "secrets:rotate", Description: "rotate", Risk: broker.RiskCritical},
			}},
		},
		Agents: []broker.Agent{
			{ID: "docs-bot", Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read", "pulls:write"}}}},
			{ID: "triage-bot", Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read", "contents:write", "secrets:read"}}}},
			{ID: "release-bot", Ceiling: []broker.CeilingEntry{{Resource: gitURI, Scopes: []string{"contents:read", "contents:write", "pulls:write"}}}},
			{ID: "support-agent", Ceiling: []broker.CeilingEntry{{Resource: billingURI, Scopes: []string{"customers:read", "refunds:create"}}}},
			{ID: "rotator", Ceiling: []broker.CeilingEntry{{Resource: vaultURI, Scopes: []string{"secrets:rotate"}}}},
		},
	}
}

// hookStore runs a hook once before the next Batch, to change the issuer
// between a submission's checks and its transaction (where a policy's
// approval commits with the submission).
type hookStore struct {
	broker.Store
	mu   sync.Mutex
	hook func()
}

func (s *hookStore) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	s.mu.Lock()
	h := s.hook
	s.hook = nil
	s.mu.Unlock()
	if h != nil {
		h()
	}
	return s.Store.Batch(ctx, fn)
}

type env struct {
	t      *testing.T
	ctx    context.Context
	svc    *broker.Service
	st     *hookStore
	events <-chan broker.Event
}

func newEnv(t *testing.T, p broker.Policy) *env {
	t.Helper()
	st := &hookStore{Store: brokertest.NewStore()}
	svc, err := broker.New(context.Background(), serviceConfig(), st, broker.Options{
		Issuer: "https://writ.example", Policy: p, Logger: quiet(),
		SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{t: t, ctx: context.Background(), svc: svc, st: st, events: svc.Subscribe(ctx)}
}

func examplePolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) submit(agent, resource string, ttl time.Duration, scopes ...string) (*broker.TaskRequest, error) {
	return e.svc.Submit(e.ctx, agent, broker.SubmitInput{LoginHint: "oncall", Intent: "the task", Scopes: scopes,
		Resource: resource, TTL: ttl})
}

func (e *env) mustSubmit(agent, resource string, ttl time.Duration, scopes ...string) *broker.TaskRequest {
	e.t.Helper()
	r, err := e.submit(agent, resource, ttl, scopes...)
	if err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return r
}

func (e *env) request(id string) *broker.TaskRequest {
	e.t.Helper()
	r, err := e.svc.Request(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// drain returns the events published so far.
func (e *env) drain() []broker.Event {
	var out []broker.Event
	for {
		select {
		case ev := <-e.events:
			out = append(out, ev)
		case <-time.After(50 * time.Millisecond):
			return out
		}
	}
}

func (e *env) audit(kinds ...broker.AuditKind) []*broker.AuditEntry {
	e.t.Helper()
	es, err := e.svc.Audit(e.ctx, broker.AuditFilter{Kinds: kinds, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if broker.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, broker.ErrorCode(err), code)
	}
}

func TestDenyRefusesAtSubmissionAndIsAudited(t *testing.T) {
	e := newEnv(t, examplePolicy(t))
	_, err := e.submit("triage-bot", gitURI, 0, "contents:read", "secrets:read")
	wantCode(t, err, broker.EFORBIDDEN)
	if broker.ErrorReason(err) != broker.ReasonAccessDenied {
		t.Errorf("reason %q", broker.ErrorReason(err))
	}
	const want = "refused by policy rule triage-never-reads-secrets: triage agents label issues; they never need repository secrets"
	if broker.ErrorMessage(err) != want {
		t.Errorf("agent told %q\nwant %q", broker.ErrorMessage(err), want)
	}
	if p, _ := e.svc.Pending(e.ctx); len(p) != 0 {
		t.Errorf("%d pending after a refusal", len(p))
	}
	es := e.audit(broker.AuditRequestRefused)
	if len(es) != 1 || es[0].AgentID != "triage-bot" || es[0].Message != want || !strings.Contains(string(es[0].Data), "secrets:read") {
		t.Fatalf("audit: %+v", es)
	}
	if n, err := e.svc.VerifyAudit(e.ctx); err != nil || n == 0 {
		t.Errorf("audit chain: %d, %v", n, err)
	}
	evs := e.drain()
	if len(evs) != 1 || evs[0].Kind != broker.EventRequestRefused || evs[0].Request.Policy.Rule != "triage-never-reads-secrets" {
		t.Errorf("events: %+v", evs)
	}
	// The same agent asking for less gets through to review.
	r := e.mustSubmit("triage-bot", gitURI, 0, "contents:read")
	if r.State != broker.RequestPending || r.Policy.Verdict != broker.VerdictReview {
		t.Errorf("state %s, verdict %s", r.State, r.Policy.Verdict)
	}
}

func TestMaxTTLCapsTheRequestAndItsNarrowing(t *testing.T) {
	e := newEnv(t, examplePolicy(t))
	r := e.mustSubmit("support-agent", billingURI, 30*time.Minute, "customers:read", "refunds:create")
	if r.Terms.TTL != 10*time.Minute || r.Policy.MaxTTL != 10*time.Minute {
		t.Fatalf("TTL %s, policy max %s: want both 10m", r.Terms.TTL, r.Policy.MaxTTL)
	}
	if !containsLine(r.Policy.Trace, "ttl: 30m asked, capped to the policy maximum of 10m") ||
		!strings.HasPrefix(r.Policy.Trace[len(r.Policy.Trace)-1], "verdict: ") {
		t.Errorf("trace: %v", r.Policy.Trace)
	}
	if stored := e.request(r.ID); stored.Terms.TTL != 10*time.Minute {
		t.Errorf("stored TTL %s", stored.Terms.TTL)
	}
	_, err := e.svc.Narrow(e.ctx, priya, r.ID, broker.Terms{Scopes: []string{"refunds:create"}, Resource: billingURI, TTL: 20 * time.Minute}, "")
	wantCode(t, err, broker.EINVALID)
	g, err := e.svc.Narrow(e.ctx, priya, r.ID, broker.Terms{Scopes: []string{"refunds:create"}, Resource: billingURI, TTL: 5 * time.Minute}, "refund only")
	if err != nil || g == nil {
		t.Fatalf("narrow within the cap: %v", err)
	}
	if g.TTL() != 5*time.Minute {
		t.Errorf("grant TTL %s", g.TTL())
	}
	// A request already within the cap is left as asked.
	r = e.mustSubmit("support-agent", billingURI, 5*time.Minute, "refunds:create")
	if r.Terms.TTL != 5*time.Minute || containsLine(r.Policy.Trace, "capped") {
		t.Errorf("TTL %s, trace %v", r.Terms.TTL, r.Policy.Trace)
	}
}

func TestLabelRaisesTheRisk(t *testing.T) {
	e := newEnv(t, examplePolicy(t))
	parent := e.mustSubmit("release-bot", gitURI, 0, "contents:read")
	if parent.Policy.Risk != broker.RiskLow {
		t.Fatalf("parent risk %s", parent.Policy.Risk)
	}
	if _, err := e.svc.Approve(e.ctx, priya, parent.ID); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Submit(e.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "open the PR",
		Scopes: []string{"pulls:write"}, Resource: gitURI, ParentID: parent.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy.Risk != broker.RiskHigh || !containsLine(r.Policy.Trace, "rule widening-follow-on → label high") {
		t.Errorf("widening follow-on: risk %s, trace %v", r.Policy.Risk, r.Policy.Trace)
	}
	within, err := e.svc.Submit(e.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "read more",
		Scopes: []string{"contents:read"}, Resource: gitURI, ParentID: parent.ID, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if within.Policy.Risk != broker.RiskLow {
		t.Errorf("follow-on within its parent: risk %s, trace %v", within.Policy.Risk, within.Policy.Trace)
	}
}

func TestAutoApprove(t *testing.T) {
	e := newEnv(t, examplePolicy(t))
	r := e.mustSubmit("docs-bot", gitURI, 10*time.Minute, "contents:read")
	if r.State != broker.RequestApproved || r.GrantID == "" {
		t.Fatalf("auto-approved request: state %s, grant %q", r.State, r.GrantID)
	}
	g, err := e.svc.Grant(e.ctx, r.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	want := broker.Operator{Issuer: "writ", Subject: "policy:docs-bot-reads-docs"}
	if g.Approver.Issuer != want.Issuer || g.Approver.Subject != want.Subject {
		t.Errorf("approver %+v, want %+v", g.Approver, want)
	}
	if !slices.Equal(g.Terms.Scopes, []string{"contents:read"}) || g.TTL() != 10*time.Minute {
		t.Errorf("granted %+v for %s", g.Terms, g.TTL())
	}
	dec, err := e.svc.Decision(e.ctx, g.DecisionID)
	if err != nil || dec.Kind != broker.DecisionApprove || dec.Operator.Subject != want.Subject {
		t.Fatalf("decision %+v, %v", dec, err)
	}
	es := e.audit(broker.AuditDecision)
	if len(es) != 1 || es[0].Actor != "operator:writ|policy:docs-bot-reads-docs" ||
		es[0].Message != "approved as asked: auto_approve by policy rule docs-bot-reads-docs" || es[0].GrantID != g.ID {
		t.Errorf("audit: %+v", es[0])
	}
	// The agent collects its token as after any approval.
	tok, err := e.svc.Redeem(e.ctx, "docs-bot", r.ID, "jkt-1")
	if err != nil || tok == nil {
		t.Fatalf("redeem: %v", err)
	}
	kinds := func(evs []broker.Event) []broker.EventKind {
		var out []broker.EventKind
		for _, ev := range evs {
			if ev.Kind == broker.EventRequestSubmitted || ev.Kind == broker.EventRequestDecided {
				out = append(out, ev.Kind)
			}
		}
		return out
	}
	if got := kinds(e.drain()); !slices.Equal(got, []broker.EventKind{broker.EventRequestSubmitted, broker.EventRequestDecided}) {
		t.Errorf("events %v", got)
	}
	// Wider asks from the same agent wait for a person.
	r = e.mustSubmit("docs-bot", gitURI, 0, "contents:read", "pulls:write")
	if r.State != broker.RequestPending || r.Policy.AutoApprove {
		t.Errorf("wider ask: %s, %+v", r.State, r.Policy)
	}
}

// TestAutoApproveNeverForHighRisk: whatever the rules say, a request that
// is high risk by the catalogue or by a label waits for a person.
func TestAutoApproveNeverForHighRisk(t *testing.T) {
	p := mustParse(t, `rules:
  - {name: approve-everything, when: 'true', effect: {auto_approve: true}}
  - {name: refunds-are-high, when: 'request.resource == "`+billingURI+`"', effect: {label: high}}
`)
	e := newEnv(t, p)
	for _, tc := range []struct {
		agent, resource string
		scopes          []string
	}{
		{"release-bot", gitURI, []string{"contents:write"}},       // high in the catalogue
		{"support-agent", billingURI, []string{"customers:read"}}, // labelled high
		{"release-bot", gitURI, []string{"pulls:write"}},          // medium: not low
	} {
		r := e.mustSubmit(tc.agent, tc.resource, 0, tc.scopes...)
		if r.State != broker.RequestPending || r.Policy.AutoApprove || !containsLine(r.Policy.Trace, "auto_approve of rule approve-everything ignored") {
			t.Errorf("%s %v: state %s, trace %v", tc.agent, tc.scopes, r.State, r.Policy.Trace)
		}
	}
	if r := e.mustSubmit("release-bot", gitURI, 0, "contents:read"); r.State != broker.RequestApproved {
		t.Errorf("low risk: %s", r.State)
	}
}

// TestAutoApproveThatCannotTakeEffect: issuance frozen between the
// submission's checks and its commit leaves the request for an operator.
func TestAutoApproveThatCannotTakeEffect(t *testing.T) {
	e := newEnv(t, examplePolicy(t))
	e.st.mu.Lock()
	e.st.hook = func() {
		if err := e.svc.Freeze(e.ctx, priya, "incident"); err != nil {
			t.Error(err)
		}
	}
	e.st.mu.Unlock()
	r := e.mustSubmit("docs-bot", gitURI, 0, "contents:read")
	if r.State != broker.RequestPending || r.Policy.AutoApprove || r.Policy.Verdict != broker.VerdictReview {
		t.Fatalf("state %s, policy %+v", r.State, r.Policy)
	}
	stored := e.request(r.ID)
	if stored.State != broker.RequestPending || !containsLine(stored.Policy.Trace, "auto_approve did not take effect (issuance is frozen") {
		t.Errorf("stored: %s, trace %v", stored.State, stored.Policy.Trace)
	}
	if es := e.audit(broker.AuditDecision); len(es) != 0 {
		t.Errorf("a decision was audited: %+v", es[0])
	}
	// The submission and the failed approval are one commit, so the
	// submission's event already says the request waits for a person.
	var told bool
	for _, ev := range e.drain() {
		told = told || ev.Request != nil && ev.Request.ID == r.ID && ev.Request.State == broker.RequestPending &&
			ev.Request.Policy != nil && !ev.Request.Policy.AutoApprove &&
			containsLine(ev.Request.Policy.Trace, "auto_approve did not take effect")
	}
	if !told {
		t.Error("no event told the console the request now waits for a person")
	}
}

func TestTwoPersonRule(t *testing.T) {
	narrowTTL := func(r *broker.TaskRequest, ttl time.Duration) broker.Terms {
		t := r.Terms.Clone()
		t.TTL = ttl
		return t
	}
	t.Run("two distinct operators", func(t *testing.T) {
		e := newEnv(t, examplePolicy(t))
		r := e.mustSubmit("rotator", vaultURI, 0, "secrets:rotate")
		if r.RequiredApprovals() != 2 {
			t.Fatalf("required %d", r.RequiredApprovals())
		}
		g, err := e.svc.Approve(e.ctx, priya, r.ID)
		if err != nil || g != nil {
			t.Fatalf("first approval: grant %v, err %v; want neither", g, err)
		}
		got := e.request(r.ID)
		if got.State != broker.RequestPending || len(got.Approvals) != 1 || got.Approvals[0].Operator.ID() != priya.ID() {
			t.Fatalf("after one approval: %s, %+v", got.State, got.Approvals)
		}
		var updated *broker.TaskRequest
		for _, ev := range e.drain() {
			if ev.Kind == broker.EventRequestUpdated {
				updated = ev.Request
			}
			if ev.Kind == broker.EventRequestDecided {
				t.Error("decided after one approval")
			}
		}
		if updated == nil || len(updated.Approvals) != 1 {
			t.Fatalf("no update event carrying the approval: %+v", updated)
		}
		_, err = e.svc.Approve(e.ctx, priya, r.ID)
		wantCode(t, err, broker.ECONFLICT)
		if !strings.Contains(broker.ErrorMessage(err), "you already approved") || !strings.Contains(broker.ErrorMessage(err), "another operator must approve") {
			t.Errorf("message %q", broker.ErrorMessage(err))
		}
		_, err = e.svc.Narrow(e.ctx, priya, r.ID, narrowTTL(r, time.Minute), "")
		wantCode(t, err, broker.ECONFLICT)
		g, err = e.svc.Approve(e.ctx, priyaElsewhere, r.ID)
		if err != nil || g == nil {
			t.Fatalf("second approval: %v, %v", g, err)
		}
		if g.Approver.ID() != priyaElsewhere.ID() || g.Terms.TTL != r.Terms.TTL {
			t.Errorf("grant %+v", g)
		}
		final := e.request(r.ID)
		if final.State != broker.RequestApproved || len(final.Approvals) != 2 {
			t.Errorf("final: %s, %d approvals", final.State, len(final.Approvals))
		}
		es := e.audit(broker.AuditDecision)
		if len(es) != 2 || !strings.Contains(es[1].Message, "approval 1 of 2 recorded (as asked); 1 more operator must approve") ||
			!strings.Contains(es[0].Message, "approved as asked (approval 2 of 2)") || es[0].GrantID != g.ID {
			for _, e := range es {
				t.Logf("%s: %s", e.Actor, e.Message)
			}
			t.Error("audit entries do not tell the two approvals")
		}
		var data struct{ Approvers []string }
		if err := json.Unmarshal(es[0].Data, &data); err != nil || !slices.Equal(data.Approvers, []string{priya.ID(), priyaElsewhere.ID()}) {
			t.Errorf("approvers in the audit: %s", es[0].Data)
		}
	})
	t.Run("the first approver's narrowing is what the second approves", func(t *testing.T) {
		e := newEnv(t, examplePolicy(t))
		r := e.mustSubmit("rotator", vaultURI, 10*time.Minute, "secrets:rotate")
		if g, err := e.svc.Narrow(e.ctx, priya, r.ID, narrowTTL(r, 5*time.Minute), "five minutes is plenty"); err != nil || g != nil {
			t.Fatalf("first narrowing: %v, %v", g, err)
		}
		if got := e.request(r.ID).ProposedTerms(); got.TTL != 5*time.Minute {
			t.Fatalf("proposed TTL %s", got.TTL)
		}
		// Going back to what the agent asked is wider than the first approver's terms.
		_, err := e.svc.Narrow(e.ctx, omar, r.ID, narrowTTL(r, 10*time.Minute), "")
		wantCode(t, err, broker.EINVALID)
		if !strings.Contains(broker.ErrorMessage(err), "must stay within what Priya approved") {
			t.Errorf("message %q", broker.ErrorMessage(err))
		}
		g, err := e.svc.Approve(e.ctx, omar, r.ID)
		if err != nil || g == nil {
			t.Fatalf("second approval: %v", err)
		}
		if g.TTL() != 5*time.Minute {
			t.Errorf("granted %s, want the first approver's 5m", g.TTL())
		}
		dec, _ := e.svc.Decision(e.ctx, g.DecisionID)
		if dec.Kind != broker.DecisionNarrow {
			t.Errorf("decision kind %s", dec.Kind)
		}
	})
	t.Run("the second approver narrows further", func(t *testing.T) {
		e := newEnv(t, examplePolicy(t))
		r := e.mustSubmit("rotator", vaultURI, 10*time.Minute, "secrets:rotate")
		if _, err := e.svc.Approve(e.ctx, priya, r.ID); err != nil {
			t.Fatal(err)
		}
		g, err := e.svc.Narrow(e.ctx, omar, r.ID, narrowTTL(r, 2*time.Minute), "two minutes")
		if err != nil || g == nil || g.TTL() != 2*time.Minute {
			t.Fatalf("second narrowing: %v, %v", g, err)
		}
	})
	t.Run("one operator's deny ends it", func(t *testing.T) {
		e := newEnv(t, examplePolicy(t))
		r := e.mustSubmit("rotator", vaultURI, 0, "secrets:rotate")
		if _, err := e.svc.Approve(e.ctx, priya, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Deny(e.ctx, omar, r.ID, "not during the freeze window"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Approve(e.ctx, lin, r.ID)
		wantCode(t, err, broker.ECONFLICT)
		if got := e.request(r.ID); got.State != broker.RequestDenied || got.GrantID != "" {
			t.Errorf("state %s, grant %q", got.State, got.GrantID)
		}
	})
	t.Run("three approvers", func(t *testing.T) {
		p := mustParse(t, "rules:\n  - {name: three, when: 'true', effect: {require_approvals: 3}}\n  - {name: two, when: 'true', effect: {require_approvals: 2}}\n")
		e := newEnv(t, p)
		r := e.mustSubmit("release-bot", gitURI, 0, "contents:read")
		for i, op := range []broker.Operator{priya, omar} {
			if g, err := e.svc.Approve(e.ctx, op, r.ID); err != nil || g != nil {
				t.Fatalf("approval %d: %v, %v", i+1, g, err)
			}
		}
		if g, err := e.svc.Approve(e.ctx, lin, r.ID); err != nil || g == nil {
			t.Fatalf("third approval: %v, %v", g, err)
		}
	})
	t.Run("frozen: no approval is recorded", func(t *testing.T) {
		e := newEnv(t, examplePolicy(t))
		r := e.mustSubmit("rotator", vaultURI, 0, "secrets:rotate")
		if err := e.svc.Freeze(e.ctx, priya, "incident"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Approve(e.ctx, priya, r.ID)
		wantCode(t, err, broker.EFROZEN)
		if got := e.request(r.ID); len(got.Approvals) != 0 {
			t.Errorf("approvals recorded while frozen: %+v", got.Approvals)
		}
	})
}

// TestPolicyErrorsFailTowardLessAccess: a rule that cannot be evaluated
// refuses (deny) rather than letting the request through.
func TestPolicyErrorsFailTowardLessAccess(t *testing.T) {
	p := mustParse(t, "rules:\n  - {name: needs-parent, when: 'parent.scopes.size() == 0', effect: {deny: true, reason: parent required}}\n")
	e := newEnv(t, p)
	_, err := e.submit("release-bot", gitURI, 0, "contents:read")
	wantCode(t, err, broker.EFORBIDDEN)
	if es := e.audit(broker.AuditRequestRefused); len(es) != 1 || !strings.Contains(string(es[0].Data), "could not be evaluated") {
		t.Errorf("audit: %+v", es)
	}
}
