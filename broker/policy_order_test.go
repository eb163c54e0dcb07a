package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store"
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
	st := store.OpenTemp(t)
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
