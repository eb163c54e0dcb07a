package broker

import (
	"context"
	"fmt"
	"strings"
)

// Approve grants a pending request exactly as asked.
func (s *Service) Approve(ctx context.Context, op Operator, requestID string) (*Grant, error) {
	return s.decide(ctx, op, requestID, DecisionApprove, nil, "")
}

// Narrow grants a pending request with narrower terms: a subset of its
// scopes and authorization details, the same or a narrower resource, a
// TTL no longer than asked. Anything wider is refused with EINVALID.
func (s *Service) Narrow(ctx context.Context, op Operator, requestID string, granted Terms, reason string) (*Grant, error) {
	return s.decide(ctx, op, requestID, DecisionNarrow, &granted, reason)
}

// Deny refuses a pending request; the agent is told the reason.
func (s *Service) Deny(ctx context.Context, op Operator, requestID, reason string) (*Decision, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, Errorf(EINVALID, "a denial needs a reason the agent and the audit log can read")
	}
	now := s.now().UTC()
	var req *TaskRequest
	var dec *Decision
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if req, err = s.pendingRequest(tx, requestID); err != nil {
			return err
		}
		dec = &Decision{ID: s.newID("dec-", 8), RequestID: req.ID, Kind: DecisionDeny, Operator: op,
			Reason: reason, At: now, Requested: req.Terms}
		req.State, req.ClosedAt, req.DecisionID = RequestDenied, now, dec.ID
		if err := tx.PutDecision(dec); err != nil {
			return err
		}
		if err := tx.PutRequest(req); err != nil {
			return err
		}
		e := s.audit(AuditDecision, operatorActor(op), &op, "denied: "+reason)
		e.AgentID, e.RequestID = req.AgentID, req.ID
		e.Data = auditData(map[string]any{"decision": dec.ID, "kind": dec.Kind, "requested": req.Terms})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventRequestDecided, At: now, Request: req, Decision: dec})
	return dec, nil
}

// pendingRequest returns a request that can still be decided, or an error
// saying exactly why not (another operator decided, the deadline passed).
func (s *Service) pendingRequest(tx Tx, id string) (*TaskRequest, error) {
	req, err := tx.Request(id)
	if err != nil {
		return nil, err
	}
	switch {
	case req.State == RequestPending && s.now().After(req.Deadline):
		return nil, Errorf(EEXPIRED, "request %s passed its review deadline at %s", short(id), req.Deadline.Format("15:04:05"))
	case req.State == RequestPending:
		return req, nil
	case req.State == RequestExpired:
		return nil, Errorf(EEXPIRED, "request %s already expired at its review deadline", short(id))
	case req.DecisionID != "":
		d, err := tx.Decision(req.DecisionID)
		if err == nil {
			return nil, Errorf(ECONFLICT, "request %s was already %s by %s", short(id), pastTense(d.Kind), d.Operator.Display())
		}
	}
	return nil, Errorf(ECONFLICT, "request %s is %s, not pending", short(id), req.State)
}

func pastTense(k DecisionKind) string {
	switch k {
	case DecisionApprove:
		return "approved"
	case DecisionNarrow:
		return "narrowed and approved"
	}
	return "denied"
}

// short shortens an unguessable id for messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// decide approves (granted nil: as asked) or narrows a request.
func (s *Service) decide(ctx context.Context, op Operator, requestID string, kind DecisionKind, granted *Terms, reason string) (*Grant, error) {
	if op.Subject == "" || op.Issuer == "" {
		return nil, Errorf(EUNAUTHORIZED, "approving needs a signed-in operator")
	}
	now := s.now().UTC()
	var req *TaskRequest
	var dec *Decision
	var grant *Grant
	// Batch groups concurrent decisions into one fsync; fn re-reads all it
	// needs, so running it again after a failed batch is safe.
	err := s.store.Batch(ctx, func(tx Tx) error {
		var err error
		if req, err = s.pendingRequest(tx, requestID); err != nil {
			return err
		}
		issuer, err := tx.Issuer()
		if err != nil {
			return err
		}
		if issuer.Frozen {
			return Errorf(EFROZEN, "issuance is frozen; unfreeze before approving")
		}
		ast, err := tx.AgentState(req.AgentID)
		if err != nil {
			return err
		}
		if ast.Quarantined {
			return Errorf(EFORBIDDEN, "agent %s is quarantined; release it before approving", req.AgentID)
		}
		terms := req.Terms.Clone()
		if granted != nil {
			terms = granted.Clone()
			if why := terms.NarrowerThan(req.Terms); why != "" {
				return Errorf(EINVALID, "a narrowing may not widen the request: %s", why)
			}
			if len(terms.ResourceScopes()) == 0 {
				return Errorf(EINVALID, "a narrowed grant needs at least one scope; deny the request instead")
			}
		}
		if err := s.withinCeiling(req.AgentID, terms); err != nil {
			return err
		}
		dec = &Decision{ID: s.newID("dec-", 8), RequestID: req.ID, Kind: kind, Operator: op, Reason: reason,
			At: now, Requested: req.Terms, Granted: &terms}
		grant = &Grant{
			ID: s.newID("grant-", 8), RequestID: req.ID, DecisionID: dec.ID, AgentID: req.AgentID,
			Intent: req.Intent, Terms: terms, Approver: op, State: GrantActive,
			CreatedAt: now, ExpiresAt: now.Add(terms.TTL), Epoch: issuer.Epoch, AgentEpoch: ast.Epoch,
		}
		if req.ParentID != "" {
			if err := linkParent(tx, req.ParentID, grant); err != nil {
				return err
			}
		}
		req.State, req.ClosedAt, req.DecisionID, req.GrantID = RequestApproved, now, dec.ID, grant.ID
		for _, put := range []func() error{
			func() error { return tx.PutDecision(dec) },
			func() error { return tx.PutGrant(grant) },
			func() error { return tx.PutRequest(req) },
		} {
			if err := put(); err != nil {
				return err
			}
		}
		msg := "approved as asked"
		if kind == DecisionNarrow {
			msg = "narrowed and approved"
			if reason != "" {
				msg += ": " + reason
			}
		}
		e := s.audit(AuditDecision, operatorActor(op), &op, msg)
		e.AgentID, e.RequestID, e.GrantID = req.AgentID, req.ID, grant.ID
		e.Data = auditData(map[string]any{"decision": dec.ID, "kind": kind, "requested": req.Terms, "granted": terms})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventRequestDecided, At: now, Request: req, Decision: dec, Grant: grant})
	return grant, nil
}

// withinCeiling re-checks terms against the agent's ceiling at decision
// time, in case the configuration changed since the request arrived.
func (s *Service) withinCeiling(agentID string, t Terms) error {
	agent, ok := s.cfg.Agent(agentID)
	if !ok {
		return Errorf(EFORBIDDEN, "agent %s is no longer configured", agentID)
	}
	ceiling, ok := agent.CeilingFor(t.Resource)
	if !ok {
		// A narrower resource falls under the ceiling of the resource it is within.
		for _, c := range agent.Ceiling {
			if ResourceWithin(t.Resource, c.Resource) {
				ceiling, ok = c.Scopes, true
			}
		}
	}
	if !ok {
		return Errorf(EFORBIDDEN, "agent %s may not hold tokens for %s", agentID, t.Resource)
	}
	for _, sc := range t.ResourceScopes() {
		if !contains(ceiling, sc) {
			return Errorf(EFORBIDDEN, "scope %s is beyond agent %s's ceiling", sc, agentID)
		}
	}
	if maxTTL := durationMin(s.cfg.Limits.MaxTTL, agent.MaxTTL); t.TTL > maxTTL {
		return Errorf(EFORBIDDEN, "TTL %s is beyond the maximum of %s", t.TTL, maxTTL)
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// linkParent records a follow-on grant under its parent's grant, so that
// revoking the parent finds its children without a scan.
func linkParent(tx Tx, parentRequestID string, g *Grant) error {
	p, err := tx.Request(parentRequestID)
	if err != nil || p.GrantID == "" {
		return nil // the parent task was never granted: nothing to link
	}
	pg, err := tx.Grant(p.GrantID)
	if err != nil {
		return fmt.Errorf("parent grant of %s: %w", g.ID, err)
	}
	g.ParentID = pg.ID
	pg.Children = append(pg.Children, g.ID)
	return tx.PutGrant(pg)
}
