package demo

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store/storetest"
)

// The demo's standing approval is made under the operator, with the
// demo's reason, and approves the analyst's next weekly query without a
// person under the demo policy; the export follow-on still waits.
func TestSeedStanding(t *testing.T) {
	ctx := context.Background()
	setup, err := NewSetup("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := broker.New(ctx, setup.Config, storetest.MustOpen(t), broker.Options{Issuer: "http://127.0.0.1:2",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	dana := broker.Operator{Issuer: "http://idp.test", Subject: "dana", Name: "Dana", Email: "dana@acme.example", EmailVerified: true, Dev: true}
	sa, err := SeedStanding(ctx, svc, setup, dana)
	if err != nil {
		t.Fatal(err)
	}
	if sa.AgentID != StandingAgent || sa.CreatedBy != dana || sa.Reason != StandingReason || sa.ExpiresAt.Sub(sa.CreatedAt) != StandingFor {
		t.Fatalf("standing approval: %+v", sa)
	}
	s := scripts[StandingAgent][0]
	in := broker.SubmitInput{LoginHint: setup.Config.ApproverQueues()[0], Intent: s.intent, Scopes: s.scopes,
		Resource: setup.Resources[s.res], TTL: s.ttl}
	next, err := svc.Submit(ctx, StandingAgent, in)
	if err != nil || next.State != broker.RequestApproved {
		t.Fatalf("the analyst's next weekly query: %v %v, want approved without a person", next.State, err)
	}
	g, err := svc.Grant(ctx, next.GrantID)
	if err != nil || g.Approver != sa.Operator() {
		t.Fatalf("its grant names %v as approver, want the standing approval: %v", g.Approver, err)
	}
	if got := svc.StandingApprovals()[0]; len(got.Uses) != 1 || got.Uses[0].RequestID != next.ID {
		t.Fatalf("uses: %+v", got.Uses)
	}
	exp := scripts[StandingAgent][0].followOn
	follow, err := svc.Submit(ctx, StandingAgent, broker.SubmitInput{LoginHint: in.LoginHint, Intent: exp.intent, Scopes: exp.scopes,
		Resource: setup.Resources[exp.res], TTL: exp.ttl, ParentID: next.ID})
	if err != nil || follow.State != broker.RequestPending {
		t.Fatalf("the export follow-on: %v %v, want pending for a person", follow.State, err)
	}
}
