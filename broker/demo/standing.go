package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/writhq/writ/broker"
)

// The demo shows a standing approval at work: once the operator signs in,
// the analyst's weekly customers query is approved once under the demo's
// operator and made standing, so the analyst's later runs of it are
// approved without a person and the Policy page counts their uses. Its
// follow-on (the export) still needs a person: a standing approval never
// covers a follow-on.

// StandingAgent is the simulated agent whose recurring task is made
// standing, and StandingFor how long.
const (
	StandingAgent = "analyst"
	StandingFor   = time.Hour
)

// StandingReason says, in the audit log and on the Policy page, whose the
// standing approval is.
const StandingReason = "the demo's standing approval: the analyst's weekly customers query repeats without a person"

// SeedStanding submits the analyst's weekly customers query as the agent
// would, approves it as op and makes a standing approval from it, through
// the same Service calls an operator's console uses.
func SeedStanding(ctx context.Context, svc *broker.Service, setup *Setup, op broker.Operator) (*broker.StandingApproval, error) {
	s := scripts[StandingAgent][0]
	req, err := svc.Submit(ctx, StandingAgent, broker.SubmitInput{LoginHint: setup.Config.ApproverQueues()[0],
		Intent: s.intent + " (first run, approved by the demo)", Scopes: s.scopes, Resource: setup.Resources[s.res], TTL: s.ttl})
	if err != nil {
		return nil, fmt.Errorf("demo standing approval: submit: %w", err)
	}
	if req.State == broker.RequestPending {
		if _, err := svc.Approve(ctx, op, req.ID); err != nil {
			return nil, fmt.Errorf("demo standing approval: approve: %w", err)
		}
	}
	sa, err := svc.CreateStanding(ctx, op, req.ID, StandingFor, StandingReason)
	if err != nil {
		return nil, fmt.Errorf("demo standing approval: %w", err)
	}
	return sa, nil
}
