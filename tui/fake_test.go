package tui

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
)

// fakeBackend is a Backend whose every method is a function field; nil
// fields return the fixture's data or succeed.
type fakeBackend struct {
	ConfigFn      func() *broker.Config
	IssuerFn      func() broker.IssuerState
	AgentsFn      func() []broker.AgentView
	PendingFn     func(context.Context) ([]*broker.TaskRequest, error)
	GrantsFn      func(context.Context, time.Duration) ([]*broker.Grant, error)
	RequestFn     func(context.Context, string) (*broker.TaskRequest, error)
	GrantFn       func(context.Context, string) (*broker.Grant, error)
	AuditFn       func(context.Context, broker.AuditFilter) ([]*broker.AuditEntry, error)
	VerifyAuditFn func(context.Context) (uint64, error)
	ApproveFn     func(context.Context, broker.Operator, string) (*broker.Grant, error)
	NarrowFn      func(context.Context, broker.Operator, string, broker.Terms, string) (*broker.Grant, error)
	DenyFn        func(context.Context, broker.Operator, string, string) (*broker.Decision, error)
	RevokeFn      func(context.Context, broker.Operator, string, string) (*broker.Revocation, error)
	RevokeAgentFn func(context.Context, broker.Operator, string, string, bool) (*broker.Revocation, error)
	ReleaseFn     func(context.Context, broker.Operator, string) error
	RevokeAllFn   func(context.Context, broker.Operator, string, bool) (*broker.Revocation, error)
	UnfreezeFn    func(context.Context, broker.Operator, string) error
	SubscribeFn   func(context.Context) <-chan broker.Event
	StandingFn    func(context.Context, broker.Operator, string, time.Duration, string) (*broker.StandingApproval, error)
	UnstandFn     func(context.Context, broker.Operator, string, string) (*broker.StandingApproval, error)

	mu    sync.Mutex
	calls []string // every action, in order, for assertions
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) Config() *broker.Config          { return f.ConfigFn() }
func (f *fakeBackend) IssuerState() broker.IssuerState { return f.IssuerFn() }
func (f *fakeBackend) Agents() []broker.AgentView      { return f.AgentsFn() }
func (f *fakeBackend) Pending(ctx context.Context) ([]*broker.TaskRequest, error) {
	return f.PendingFn(ctx)
}
func (f *fakeBackend) Grants(ctx context.Context, recent time.Duration) ([]*broker.Grant, error) {
	return f.GrantsFn(ctx, recent)
}
func (f *fakeBackend) Request(ctx context.Context, id string) (*broker.TaskRequest, error) {
	return f.RequestFn(ctx, id)
}
func (f *fakeBackend) Grant(ctx context.Context, id string) (*broker.Grant, error) {
	return f.GrantFn(ctx, id)
}
func (f *fakeBackend) Audit(ctx context.Context, flt broker.AuditFilter) ([]*broker.AuditEntry, error) {
	return f.AuditFn(ctx, flt)
}
func (f *fakeBackend) VerifyAudit(ctx context.Context) (uint64, error) { return f.VerifyAuditFn(ctx) }
func (f *fakeBackend) Approve(ctx context.Context, op broker.Operator, id string) (*broker.Grant, error) {
	f.record("approve %s by %s", id, op.Subject)
	return f.ApproveFn(ctx, op, id)
}
func (f *fakeBackend) Narrow(ctx context.Context, op broker.Operator, id string, t broker.Terms, reason string) (*broker.Grant, error) {
	f.record("narrow %s to %v ttl %s", id, t.Scopes, t.TTL)
	return f.NarrowFn(ctx, op, id, t, reason)
}
func (f *fakeBackend) Deny(ctx context.Context, op broker.Operator, id, reason string) (*broker.Decision, error) {
	f.record("deny %s: %s", id, reason)
	return f.DenyFn(ctx, op, id, reason)
}
func (f *fakeBackend) Revoke(ctx context.Context, op broker.Operator, id, reason string) (*broker.Revocation, error) {
	f.record("revoke %s: %s", id, reason)
	return f.RevokeFn(ctx, op, id, reason)
}
func (f *fakeBackend) RevokeAgent(ctx context.Context, op broker.Operator, id, reason string, q bool) (*broker.Revocation, error) {
	f.record("revoke-agent %s quarantine=%v: %s", id, q, reason)
	return f.RevokeAgentFn(ctx, op, id, reason, q)
}
func (f *fakeBackend) Release(ctx context.Context, op broker.Operator, id string) error {
	f.record("release %s", id)
	return f.ReleaseFn(ctx, op, id)
}
func (f *fakeBackend) RevokeAll(ctx context.Context, op broker.Operator, reason string, freeze bool) (*broker.Revocation, error) {
	f.record("revoke-all freeze=%v by %s", freeze, op.Subject)
	return f.RevokeAllFn(ctx, op, reason, freeze)
}
func (f *fakeBackend) Unfreeze(ctx context.Context, op broker.Operator, reason string) error {
	f.record("unfreeze by %s", op.Subject)
	return f.UnfreezeFn(ctx, op, reason)
}
func (f *fakeBackend) CreateStanding(ctx context.Context, op broker.Operator, id string, d time.Duration, reason string) (*broker.StandingApproval, error) {
	f.record("standing %s for %s by %s: %s", id, d, op.Subject, reason)
	if f.StandingFn == nil {
		return &broker.StandingApproval{ID: "standing-" + id, AgentID: "reader-bot", FromRequest: id, CreatedBy: op,
			Terms:     broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com", TTL: 5 * time.Minute},
			CreatedAt: fixedNow, ExpiresAt: fixedNow.Add(d), Reason: reason}, nil
	}
	return f.StandingFn(ctx, op, id, d, reason)
}
func (f *fakeBackend) RevokeStanding(ctx context.Context, op broker.Operator, id, reason string) (*broker.StandingApproval, error) {
	f.record("revoke-standing %s by %s: %s", id, op.Subject, reason)
	if f.UnstandFn == nil {
		return &broker.StandingApproval{ID: id, AgentID: "reader-bot", CreatedBy: priya, RevokedAt: fixedNow, RevokedBy: &op,
			Terms:     broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com", TTL: 5 * time.Minute},
			CreatedAt: fixedNow.Add(-time.Minute), ExpiresAt: fixedNow.Add(time.Hour), Reason: reason}, nil
	}
	return f.UnstandFn(ctx, op, id, reason)
}
func (f *fakeBackend) Subscribe(ctx context.Context) <-chan broker.Event { return f.SubscribeFn(ctx) }

// fixedNow is the fixture clock: countdowns in golden files never move.
var fixedNow = time.Date(2026, 3, 14, 9, 20, 0, 0, time.UTC)

var priya = broker.Operator{Issuer: "https://idp.example.com", Subject: "priya", Name: "Priya Raman", Email: "priya@example.com", EmailVerified: true}

// fixtureConfig is a small, realistic configuration.
func fixtureConfig() *broker.Config {
	return &broker.Config{
		Resources: []broker.Resource{
			{URI: "https://api.github.com", Name: "GitHub", Scopes: []broker.Scope{
				{Name: "contents:read", Description: "read repository contents", Risk: broker.RiskLow},
				{Name: "contents:write", Description: "push commits and branches", Risk: broker.RiskHigh},
				{Name: "pull_requests:write", Description: "open and update pull requests", Risk: broker.RiskMedium},
				{Name: "workflows:write", Description: "change CI workflows", Risk: broker.RiskCritical},
				{Name: "secrets:read", Description: "read repository secrets", Risk: broker.RiskCritical},
			}},
			{URI: "https://db.internal/customers", Name: "Customers DB", Scopes: []broker.Scope{
				{Name: "customers:read", Description: "query the customer table", Risk: broker.RiskMedium},
			}},
			{URI: "https://payments.internal", Name: "Payments", Scopes: []broker.Scope{
				{Name: "refunds:create", Description: "issue a refund", Risk: broker.RiskHigh},
			}},
		},
		Agents: []broker.Agent{
			{ID: "release-bot", Name: "Release agent", Owner: "https://idp.example.com|platform", Keys: []jose.JSONWebKey{{KeyID: "3f9a1c2b7d4e5f60", Algorithm: "EdDSA"}},
				Ceiling: []broker.CeilingEntry{{Resource: "https://api.github.com", Scopes: []string{"contents:read", "contents:write", "pull_requests:write", "workflows:write", "secrets:read"}}}},
			{ID: "support-bot", Name: "Support agent", Owner: "https://idp.example.com|cx", Workload: &broker.WorkloadIdentity{Issuer: "https://spiffe.example.org", Subject: "spiffe://example.org/agent/support"},
				Ceiling: []broker.CeilingEntry{{Resource: "https://db.internal/customers", Scopes: []string{"customers:read"}}, {Resource: "https://payments.internal", Scopes: []string{"refunds:create"}}}},
			{ID: "reader-bot", Name: "Docs reader", Owner: "https://idp.example.com|docs", Keys: []jose.JSONWebKey{{KeyID: "a1b2c3d4e5f60718", Algorithm: "ES256"}},
				Ceiling: []broker.CeilingEntry{{Resource: "https://api.github.com", Scopes: []string{"contents:read"}}}},
		},
		Limits: broker.DefaultLimits,
	}
}

func req(id, agent, intent, resource string, age time.Duration, ttl time.Duration, scopes ...string) *broker.TaskRequest {
	created := fixedNow.Add(-age)
	return &broker.TaskRequest{ID: id, AgentID: agent, Intent: intent, State: broker.RequestPending,
		Terms:     broker.Terms{Scopes: scopes, Resource: resource, TTL: ttl},
		CreatedAt: created, Deadline: created.Add(10 * time.Minute),
		Policy: &broker.PolicyResult{Verdict: "review", Trace: []string{"verdict: review by an operator"}}}
}

// fixture is the state of Priya's morning.
type fixture struct {
	cfg     *broker.Config
	issuer  broker.IssuerState
	agents  []broker.AgentView
	pending []*broker.TaskRequest
	grants  []*broker.Grant
	audit   []*broker.AuditEntry
}

func newFixture() *fixture {
	f := &fixture{cfg: fixtureConfig(), issuer: broker.IssuerState{Epoch: 1}}
	for _, a := range f.cfg.Agents {
		f.agents = append(f.agents, broker.AgentView{Agent: a, State: broker.AgentState{ID: a.ID, Epoch: 1, LastSeen: fixedNow.Add(-30 * time.Second)}})
	}
	pr := req("req-cve-1234-aaaaaaaa", "release-bot", "open PR fixing CVE-2026-1234", "https://api.github.com", 95*time.Second, time.Hour,
		"contents:write", "workflows:write")
	pr.Terms.Details = []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Identifier: "acme/web",
		Actions: []string{"push", "pull_request"}, Locations: []string{"https://api.github.com/repos/acme/web"}}}
	pr.Policy.Risk = broker.RiskCritical
	pr.Policy.Trace = []string{"risk: highest action risk is critical", "verdict: review by an operator"}
	follow := req("req-secrets-bbbbbbbb", "release-bot", "read secrets \x1b[31mto finish the PR\x1b[0m", "https://api.github.com", 20*time.Second, 15*time.Minute,
		"contents:write", "secrets:read")
	follow.ParentID = "req-parent-cccccccc"
	f.pending = []*broker.TaskRequest{
		pr,
		req("req-refund-dddddddd", "support-bot", "refund order #4411 (duplicate charge)", "https://payments.internal", 70*time.Second, 5*time.Minute, "refunds:create"),
		req("req-query-eeeeeeee", "support-bot", "look up customer 88 for ticket 5120", "https://db.internal/customers", 50*time.Second, 10*time.Minute, "customers:read"),
		follow,
	}
	for i := range 4 {
		f.pending = append(f.pending, req(fmt.Sprintf("req-burst-%d-ffffffff", i), "reader-bot", fmt.Sprintf("read docs page %d", 10+i),
			"https://api.github.com", time.Duration(40-i*5)*time.Second, 5*time.Minute, "contents:read"))
	}
	parent := &broker.Grant{ID: "grant-parent-1111", RequestID: "req-parent-cccccccc", AgentID: "release-bot",
		Intent: "open PR fixing CVE-2026-1234", State: broker.GrantActive, Approver: priya, Epoch: 1, AgentEpoch: 1,
		Terms:     broker.Terms{Scopes: []string{"contents:write"}, Resource: "https://api.github.com", TTL: 15 * time.Minute},
		CreatedAt: fixedNow.Add(-5 * time.Minute), ExpiresAt: fixedNow.Add(10 * time.Minute),
		TokenJTI: "jti-1", JKT: "jkt-thumbprint-123456", Uses: 12, LastUse: fixedNow.Add(-4 * time.Second)}
	f.grants = []*broker.Grant{
		{ID: "grant-revoked-2222", RequestID: "req-old-1", AgentID: "support-bot", Intent: "export customer list",
			State: broker.GrantRevoked, Approver: priya, Epoch: 1, AgentEpoch: 1, EndReason: "not what the task is about",
			Terms:     broker.Terms{Scopes: []string{"customers:read"}, Resource: "https://db.internal/customers", TTL: 10 * time.Minute},
			CreatedAt: fixedNow.Add(-8 * time.Minute), ExpiresAt: fixedNow.Add(2 * time.Minute), EndedAt: fixedNow.Add(-12 * time.Second),
			TokenJTI: "jti-2", Uses: 3, LastUse: fixedNow.Add(-20 * time.Second), RefusedAfterEnd: 3},
		parent,
		{ID: "grant-reader-3333", RequestID: "req-old-2", AgentID: "reader-bot", Intent: "read the onboarding guide",
			State: broker.GrantActive, Approver: priya, Epoch: 1, AgentEpoch: 1,
			Terms:     broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com", TTL: 5 * time.Minute},
			CreatedAt: fixedNow.Add(-4*time.Minute - 15*time.Second), ExpiresAt: fixedNow.Add(45 * time.Second), TokenJTI: "jti-3"},
	}
	kinds := []broker.AuditKind{broker.AuditRequestSubmitted, broker.AuditDecision, broker.AuditTokenIssued, broker.AuditGrantRevoked}
	msgs := []string{"open PR fixing CVE-2026-1234", "narrowed and approved", "token issued", "revoked: not what the task is about"}
	for i := range 12 {
		f.audit = append(f.audit, &broker.AuditEntry{Seq: uint64(12 - i), At: fixedNow.Add(-time.Duration(i) * 30 * time.Second),
			Kind: kinds[i%4], Actor: "agent:release-bot", AgentID: "release-bot", Message: msgs[i%4],
			Hash: fmt.Sprintf("%064x", 12-i), Prev: fmt.Sprintf("%064x", 11-i)})
	}
	return f
}

// backend returns a fake over the fixture. Actions succeed and record.
func (f *fixture) backend() *fakeBackend {
	return &fakeBackend{
		ConfigFn:  func() *broker.Config { return f.cfg },
		IssuerFn:  func() broker.IssuerState { return f.issuer },
		AgentsFn:  func() []broker.AgentView { return f.agents },
		PendingFn: func(context.Context) ([]*broker.TaskRequest, error) { return f.pending, nil },
		GrantsFn:  func(context.Context, time.Duration) ([]*broker.Grant, error) { return f.grants, nil },
		RequestFn: func(_ context.Context, id string) (*broker.TaskRequest, error) {
			return &broker.TaskRequest{ID: id, GrantID: "grant-parent-1111"}, nil
		},
		GrantFn: func(_ context.Context, id string) (*broker.Grant, error) {
			for _, g := range f.grants {
				if g.ID == id {
					return g, nil
				}
			}
			return nil, broker.Errorf(broker.ENOTFOUND, "no grant %s", id)
		},
		AuditFn: func(_ context.Context, flt broker.AuditFilter) ([]*broker.AuditEntry, error) {
			if flt.Before != 0 {
				return nil, nil
			}
			return f.audit, nil
		},
		VerifyAuditFn: func(context.Context) (uint64, error) { return uint64(len(f.audit)), nil },
		ApproveFn: func(_ context.Context, op broker.Operator, id string) (*broker.Grant, error) {
			return &broker.Grant{ID: "grant-new-" + id, RequestID: id, State: broker.GrantActive, Approver: op,
				CreatedAt: fixedNow, ExpiresAt: fixedNow.Add(time.Hour), Epoch: 1, AgentEpoch: 1}, nil
		},
		NarrowFn: func(_ context.Context, op broker.Operator, id string, t broker.Terms, _ string) (*broker.Grant, error) {
			return &broker.Grant{ID: "grant-narrow-" + id, RequestID: id, State: broker.GrantActive, Approver: op, Terms: t,
				CreatedAt: fixedNow, ExpiresAt: fixedNow.Add(t.TTL), Epoch: 1, AgentEpoch: 1}, nil
		},
		DenyFn: func(_ context.Context, op broker.Operator, id, reason string) (*broker.Decision, error) {
			return &broker.Decision{ID: "dec-" + id, RequestID: id, Kind: broker.DecisionDeny, Operator: op, Reason: reason}, nil
		},
		RevokeFn: func(_ context.Context, op broker.Operator, id, reason string) (*broker.Revocation, error) {
			return &broker.Revocation{Scope: broker.RevokeGrant, Target: id, Operator: op, Reason: reason, Grants: 1}, nil
		},
		RevokeAgentFn: func(_ context.Context, op broker.Operator, id, reason string, q bool) (*broker.Revocation, error) {
			return &broker.Revocation{Scope: broker.RevokeAgent, Target: id, Operator: op, Reason: reason}, nil
		},
		ReleaseFn: func(context.Context, broker.Operator, string) error { return nil },
		RevokeAllFn: func(_ context.Context, op broker.Operator, reason string, freeze bool) (*broker.Revocation, error) {
			return &broker.Revocation{Scope: broker.RevokeAll, Operator: op, Reason: reason, Freeze: freeze, Epoch: 2, At: fixedNow}, nil
		},
		UnfreezeFn:  func(context.Context, broker.Operator, string) error { return nil },
		SubscribeFn: func(ctx context.Context) <-chan broker.Event { return make(chan broker.Event) },
	}
}
