package load_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/load"
)

// countingApprover is an operator over the service in this process: it
// counts its approvals, checks each request is still pending (the policy
// did not approve it), and can refuse or hide the live events.
type countingApprover struct {
	svc *broker.Service
	op  broker.Operator
	// resyncOnly replaces the event stream by one resync a few times a
	// second: the operator must find the requests in the pending list.
	resyncOnly bool
	refuse     error
	approved   atomic.Int64
	mu         sync.Mutex
	bad        []string
}

func (a *countingApprover) Subscribe(ctx context.Context) <-chan broker.Event {
	if !a.resyncOnly {
		return a.svc.Subscribe(ctx)
	}
	ch := make(chan broker.Event)
	go func() {
		defer close(ch)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- broker.Event{Kind: broker.EventResync}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

func (a *countingApprover) Pending(ctx context.Context) ([]*broker.TaskRequest, error) {
	return a.svc.Pending(ctx)
}

func (a *countingApprover) Approve(ctx context.Context, _ broker.Operator, id string) (*broker.Grant, error) {
	if a.refuse != nil {
		return nil, a.refuse
	}
	r, err := a.svc.Request(ctx, id)
	if err != nil || r.State != broker.RequestPending || strings.Join(r.Terms.Scopes, ",") != load.OperatorScope {
		a.mu.Lock()
		a.bad = append(a.bad, id)
		a.mu.Unlock()
	}
	g, err := a.svc.Approve(ctx, a.op, id)
	if err == nil {
		a.approved.Add(1)
	}
	return g, err
}

// TestCycleOperator: under the load policy, the agents' requests for
// OperatorScope wait for an operator; the operators, following the live
// events (or, having lost them, the pending list), approve each one, and
// the agents redeem DPoP-bound tokens. An operator whose approvals fail
// makes the cycles fail with its error instead of hanging.
func TestCycleOperator(t *testing.T) {
	const presignRate = 100
	setup, err := load.NewSetup(load.AgentsFor(presignRate, 0), jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := load.Policy()
	if err != nil {
		t.Fatal(err)
	}
	op := broker.Operator{Issuer: "https://idp.test", Subject: "priya", Email: "priya@example.com", EmailVerified: true}
	for _, tc := range []struct {
		name      string
		approvers []*countingApprover
		wantErr   string
	}{
		{name: "two operators on the event stream", approvers: []*countingApprover{{}, {}}},
		{name: "events lost: the pending list", approvers: []*countingApprover{{resyncOnly: true}}},
		{name: "approvals refused", approvers: []*countingApprover{{refuse: errors.New("refused by the test")}}, wantErr: "refused by the test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A server of its own: the agents' submission bursts are fresh.
			issuer, svc := serveWith(t, setup, pol)
			var ops []load.Approver
			for _, a := range tc.approvers {
				a.svc, a.op = svc, op
				ops = append(ops, a)
			}
			o := load.Options{Issuer: issuer, Setup: setup, Clients: 4, Duration: 500 * time.Millisecond, PresignRate: presignRate}
			r, err := load.CycleOperator(context.Background(), o, ops)
			if err != nil {
				t.Fatal(err)
			}
			var approved int64
			for i, a := range tc.approvers {
				approved += a.approved.Load()
				if len(a.bad) > 0 {
					t.Errorf("operator %d was handed requests that were not pending %s requests: %v", i, load.OperatorScope, a.bad)
				}
				if len(tc.approvers) > 1 && a.approved.Load() == 0 {
					t.Errorf("operator %d approved nothing: the requests are not shared out", i)
				}
			}
			if tc.wantErr != "" {
				if r.Count != 0 || r.Errors == 0 || r.FirstError == nil || !strings.Contains(r.FirstError.Error(), tc.wantErr) {
					t.Errorf("%d cycles, %d errors (first %v); want only failures with %q", r.Count, r.Errors, r.FirstError, tc.wantErr)
				}
				return
			}
			if r.Count == 0 || r.Errors != 0 || int64(r.Count) > approved || r.P50 <= 0 {
				t.Errorf("%d cycles, %d errors (first %v), %d approvals, p50 %s", r.Count, r.Errors, r.FirstError, approved, r.P50)
			}
		})
	}
}

// TestHasOperatorScope: a setup written before OperatorScope existed is
// told apart, so the operator cycle refuses it before it starts.
func TestHasOperatorScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*load.Setup)
		want bool
	}{
		{"generated", func(*load.Setup) {}, true},
		{"resource without it", func(s *load.Setup) { s.Config.Resources[0].Scopes = s.Config.Resources[0].Scopes[:1] }, false},
		{"an agent's ceiling without it", func(s *load.Setup) { s.Config.Agents[1].Ceiling[0].Scopes = []string{load.Scope} }, false},
	} {
		setup, err := load.NewSetup(2, jose.EdDSA)
		if err != nil {
			t.Fatal(err)
		}
		tc.edit(setup)
		if got := load.HasOperatorScope(setup); got != tc.want {
			t.Errorf("%s: %t, want %t", tc.name, got, tc.want)
		}
	}
}
