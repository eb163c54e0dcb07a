package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// gatePolicy holds every evaluation until released, standing for a heavy
// rule.
type gatePolicy struct {
	entered chan struct{}
	release chan struct{}
}

func (p *gatePolicy) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	p.entered <- struct{}{}
	<-p.release
	return broker.DefaultPolicy{}.Evaluate(ctx, in)
}

// TestRevokeNeverWaitsForPolicy (issue 10, item 3): policy runs before the
// write transaction opens, so while one agent's request is being evaluated
// another's durable revocation commits. The test shows ordering, not time:
// the revocation completes while the evaluation is still held.
func TestRevokeNeverWaitsForPolicy(t *testing.T) {
	gate := &gatePolicy{entered: make(chan struct{}, 1), release: make(chan struct{})}
	st := brokertest.NewStore()
	c := newClock()
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{
		Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000, Policy: gate,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A grant to revoke later, made while the gate lets evaluations through.
	go func() { <-gate.entered; gate.release <- struct{}{} }()
	req, err := svc.Submit(ctx, "support", broker.SubmitInput{LoginHint: "oncall", Intent: "refund", Scopes: []string{"refunds:create"},
		Resource: billingURI, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Approve(ctx, op, req.ID)
	if err != nil {
		t.Fatal(err)
	}

	submitted := make(chan error, 1)
	go func() {
		_, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "push", Scopes: []string{"contents:write"},
			Resource: gitURI, TTL: 10 * time.Minute})
		submitted <- err
	}()
	<-gate.entered // the other agent's request is in policy evaluation now
	revoked := make(chan error, 1)
	go func() {
		_, err := svc.Revoke(ctx, op, g.ID, "suspicious refund")
		revoked <- err
	}()
	select {
	case err := <-revoked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the revocation waited for another request's policy evaluation")
	}
	select {
	case <-submitted:
		t.Fatal("the held submission finished before its evaluation was released")
	default:
	}
	close(gate.release)
	if err := <-submitted; err != nil {
		t.Fatal(err)
	}
}

// countingStore counts write transactions.
type countingStore struct {
	broker.Store
	writes int
}

func (s *countingStore) Update(ctx context.Context, fn func(broker.Tx) error) error {
	s.writes++
	return s.Store.Update(ctx, fn)
}

func (s *countingStore) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	s.writes++
	return s.Store.Batch(ctx, fn)
}

type approveAll struct{}

func (approveAll) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	r := broker.Baseline(in)
	r.Verdict, r.Rule, r.AutoApprove = broker.VerdictAutoApprove, "all", true
	return r
}

// TestPolicyApprovalIsOneCommit (issue 12): a request a policy approves is
// submitted, decided and granted in one durable write, with both audit
// entries, in order.
func TestPolicyApprovalIsOneCommit(t *testing.T) {
	st := &countingStore{Store: brokertest.NewStore()}
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{
		Issuer: "https://writ.example", Now: newClock().Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000, Policy: approveAll{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := st.writes
	r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "read", Scopes: []string{"contents:read"},
		Resource: gitURI, TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != broker.RequestApproved || r.GrantID == "" {
		t.Fatalf("state %s, grant %q", r.State, r.GrantID)
	}
	if n := st.writes - before; n != 1 {
		t.Errorf("%d write transactions for a policy-approved submission, want 1", n)
	}
	es, err := svc.Audit(ctx, broker.AuditFilter{Limit: 2})
	if err != nil || len(es) != 2 || es[1].Kind != broker.AuditRequestSubmitted || es[0].Kind != broker.AuditDecision {
		t.Fatalf("audit (newest first): %v %v", es, err)
	}
}
