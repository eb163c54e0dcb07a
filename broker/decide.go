package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Approve grants a pending request exactly as asked, or, once another
// operator has approved it, exactly as that operator proposed.
//
// When policy requires several distinct operators to approve
// (TaskRequest.RequiredApprovals) and this approval is not the last one
// needed, Approve records it and returns a nil grant with a nil error: the
// request stays pending, and an EventRequestUpdated carries it with the
// approval added (TaskRequest.Approvals). Callers must check for a nil
// grant. The same operator approving twice is refused with ECONFLICT.
func (s *Service) Approve(ctx context.Context, op Operator, requestID string) (*Grant, error) {
	_, g, err := s.decide(ctx, op, requestID, DecisionApprove, nil, "")
	return g, err
}

// Narrow grants a pending request with narrower terms: a subset of its
// scopes and authorization details, the same or a narrower resource, a
// TTL no longer than asked (nor than the policy's max_ttl). Anything wider
// is refused with EINVALID. Once another operator has approved, the terms
// must be within what that operator proposed. Like Approve, it returns a
// nil grant with a nil error when it recorded one approval of several.
func (s *Service) Narrow(ctx context.Context, op Operator, requestID string, granted Terms, reason string) (*Grant, error) {
	_, g, err := s.decide(ctx, op, requestID, DecisionNarrow, &granted, reason)
	return g, err
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
	var refused error
	// A decision, like Approve's: Batch, fn re-reads all it needs, and a
	// refusal is a value (see decideTx).
	err := s.store.Batch(ctx, func(tx Tx) error {
		if req, refused = s.pendingRequest(tx, requestID); refused != nil {
			return nil
		}
		dec = &Decision{ID: s.newTimedID("dec-", 8), RequestID: req.ID, Kind: DecisionDeny, Operator: op,
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
		data := map[string]any{"decision": dec.ID, "kind": dec.Kind, "requested": req.Terms}
		if len(req.Approvals) > 0 {
			// One operator's denial ends a request others had approved.
			data["approvers"] = approverIDs(req.Approvals)
		}
		e.Data = auditData(data)
		return tx.AppendAudit(e)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventRequestDecided, At: now, Request: req, Decision: dec})
	return dec, nil
}

// pendingRequest returns a request that can still be decided, or an error
// saying exactly why not (another operator decided, the deadline passed).
func (s *Service) pendingRequest(tx TxReader, id string) (*TaskRequest, error) {
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
func short(id string) string { return ShortID(id) }

// decide approves (granted nil: as proposed) or narrows a request, and
// returns the request as committed with the grant it made: nil when it
// recorded one approval of several that policy requires.
func (s *Service) decide(ctx context.Context, op Operator, requestID string, kind DecisionKind, granted *Terms, reason string) (*TaskRequest, *Grant, error) {
	if op.Subject == "" || op.Issuer == "" {
		return nil, nil, Errorf(EUNAUTHORIZED, "approving needs a signed-in operator")
	}
	now := s.now().UTC()
	var out decided
	var refused error
	// Batch groups concurrent decisions into one fsync; fn re-reads all it
	// needs, so running it again is safe. A refusal comes back as a value,
	// not as fn's error, which would make the group run again.
	err := s.store.Batch(ctx, func(tx Tx) error {
		var err error
		out, refused, err = s.decideTx(tx, op, requestID, kind, granted, reason, now)
		return err
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, nil, err
	}
	s.publishDecided(out.req, out.dec, out.grant, now)
	return out.req, out.grant, nil
}

// publishDecided tells subscribers what a decision committed: the request
// updated (one approval of several recorded) or decided with its grant.
func (s *Service) publishDecided(req *TaskRequest, dec *Decision, grant *Grant, now time.Time) {
	c := *req
	if grant == nil {
		s.publish(Event{Kind: EventRequestUpdated, At: now, Request: &c})
		return
	}
	s.publish(Event{Kind: EventRequestDecided, At: now, Request: &c, Decision: dec, Grant: grant})
}

// decided is what a decision committed: the request as it now stands, the
// decision and the grant (both nil when it recorded one approval of
// several).
type decided struct {
	req   *TaskRequest
	dec   *Decision
	grant *Grant
}

// decideTx is a decision inside a write transaction. It checks everything
// (pending, frozen, quarantine, owner, terms, ceiling, parent) before it
// writes anything: a refusal is returned as refused, with nothing written,
// so the caller's Batch fn can return nil and the group commit does not
// run everyone else's writes again. err is the transaction failing.
func (s *Service) decideTx(tx Tx, op Operator, requestID string, kind DecisionKind, granted *Terms, reason string, now time.Time) (out decided, refused, err error) {
	req, err := s.pendingRequest(tx, requestID)
	if err != nil {
		return decided{}, err, nil
	}
	plan, err := s.checkDecision(tx, op, req, kind, granted, reason, now)
	if err != nil {
		return decided{}, err, nil
	}
	out, err = s.writeDecision(tx, plan, now)
	return out, nil, err
}

// decisionPlan is a decision checkDecision found possible, with all that
// writeDecision needs to commit it.
type decisionPlan struct {
	op       Operator
	req      *TaskRequest // with this approval added when several are required
	kind     DecisionKind
	reason   string
	terms    Terms
	required int
	issuer   IssuerState
	agent    AgentState
	parent   *Grant // a follow-on's live parent grant
	capped   bool   // terms' TTL cut to end with the parent
}

// checkDecision checks a decision of the pending request req, reading but
// never writing: every error it returns leaves the transaction untouched.
// It adds the approval to req when policy requires several.
func (s *Service) checkDecision(tx TxReader, op Operator, req *TaskRequest, kind DecisionKind, granted *Terms, reason string, now time.Time) (*decisionPlan, error) {
	issuer, err := tx.Issuer()
	if err != nil {
		return nil, err
	}
	if issuer.Frozen {
		return nil, Errorf(EFROZEN, "issuance is frozen; unfreeze before approving")
	}
	ast, err := tx.AgentState(req.AgentID)
	if err != nil {
		return nil, err
	}
	if ast.Quarantined {
		return nil, Errorf(EFORBIDDEN, "agent %s is quarantined; release it before approving", req.AgentID)
	}
	if err := s.notOwner(op, req.AgentID); err != nil {
		return nil, err
	}
	required := req.RequiredApprovals()
	if req.ApprovedBy(op) {
		return nil, Errorf(ECONFLICT, "you already approved request %s (approval %d of %d): another operator must approve it",
			short(req.ID), len(req.Approvals), required)
	}
	terms, err := s.decidedTerms(req, granted)
	if err != nil {
		return nil, err
	}
	if err := s.withinCeiling(req.AgentID, terms); err != nil {
		return nil, err
	}
	p := &decisionPlan{op: op, req: req, kind: kind, reason: reason, terms: terms, required: required, issuer: issuer, agent: ast}
	if required > 1 {
		req.Approvals = append(req.Approvals, Approval{Operator: op, At: now, Kind: kind, Terms: terms.Clone(), Reason: reason})
		if len(req.Approvals) < required {
			return p, nil
		}
		// What is granted is narrowed if any approver narrowed it.
		if slices.ContainsFunc(req.Approvals, func(a Approval) bool { return a.Kind == DecisionNarrow }) {
			p.kind = DecisionNarrow
		}
	}
	// A follow-on lives inside its parent: it ends no later.
	if req.ParentID != "" {
		if p.parent, err = s.decidedParent(tx, req.ParentID, now); err != nil {
			return nil, err
		}
		p.terms, p.capped = capToParent(p.terms, p.parent, now)
	}
	return p, nil
}

// writeDecision commits what checkDecision planned: one approval of
// several, or the decision with its grant.
func (s *Service) writeDecision(tx Tx, p *decisionPlan, now time.Time) (decided, error) {
	req, op, kind, terms := p.req, p.op, p.kind, p.terms
	if p.required > 1 && len(req.Approvals) < p.required {
		if err := s.recordApproval(tx, op, req, kind, p.reason); err != nil {
			return decided{}, err
		}
		return decided{req: req}, nil
	}
	dec := &Decision{ID: s.newTimedID("dec-", 8), RequestID: req.ID, Kind: kind, Operator: op, Reason: p.reason,
		At: now, Requested: req.Terms, Granted: &terms}
	grant := &Grant{
		ID: s.newTimedID("grant-", 8), RequestID: req.ID, DecisionID: dec.ID, AgentID: req.AgentID,
		Intent: req.Intent, Terms: terms, Approver: op, State: GrantActive,
		CreatedAt: now, ExpiresAt: now.Add(terms.TTL), Epoch: p.issuer.Epoch, AgentEpoch: p.agent.Epoch,
	}
	if parent := p.parent; parent != nil {
		grant.ParentID = parent.ID
		parent.Children = append(parent.Children, grant.ID)
		if err := tx.PutGrant(parent); err != nil {
			return decided{}, err
		}
	}
	req.State, req.ClosedAt, req.DecisionID, req.GrantID = RequestApproved, now, dec.ID, grant.ID
	for _, put := range []func() error{
		func() error { return tx.PutDecision(dec) },
		func() error { return tx.PutGrant(grant) },
		func() error { return tx.PutRequest(req) },
	} {
		if err := put(); err != nil {
			return decided{}, err
		}
	}
	msg := "approved as asked"
	if kind == DecisionNarrow {
		msg = "narrowed and approved"
	}
	if p.required > 1 {
		msg += fmt.Sprintf(" (approval %d of %d)", p.required, p.required)
	}
	if p.capped {
		msg += fmt.Sprintf("; TTL cut to %s so it ends with its parent grant %s", shortDuration(terms.TTL), p.parent.ID)
	}
	if p.reason != "" {
		msg += ": " + p.reason
	}
	e := s.audit(AuditDecision, operatorActor(op), &op, msg)
	e.AgentID, e.RequestID, e.GrantID = req.AgentID, req.ID, grant.ID
	data := map[string]any{"decision": dec.ID, "kind": kind, "requested": req.Terms, "granted": terms}
	if p.required > 1 {
		data["approvers"] = approverIDs(req.Approvals)
	}
	e.Data = auditData(data)
	if err := tx.AppendAudit(e); err != nil {
		return decided{}, err
	}
	return decided{req: req, dec: dec, grant: grant}, nil
}

// decidedTerms are the terms an approval grants: what the earlier
// approvers proposed (the request as asked when there were none), or a
// narrowing of them, never beyond the policy's max_ttl.
func (s *Service) decidedTerms(req *TaskRequest, granted *Terms) (Terms, error) {
	proposed := req.ProposedTerms()
	terms := proposed.Clone().Normalized()
	if granted != nil {
		// Dropping a scope drops it from every detail; a detail left with
		// no action is dropped.
		terms = granted.Clone().Normalized()
		if why := terms.NarrowerThan(proposed); why != "" {
			if len(req.Approvals) > 0 {
				return Terms{}, Errorf(EINVALID, "a narrowing must stay within what %s approved: %s",
					req.Approvals[len(req.Approvals)-1].Operator.Display(), why)
			}
			return Terms{}, Errorf(EINVALID, "a narrowing may not widen the request: %s", why)
		}
		if len(terms.ResourceScopes()) == 0 {
			return Terms{}, Errorf(EINVALID, "a narrowed grant needs at least one scope; deny the request instead")
		}
	}
	if req.Policy != nil && req.Policy.MaxTTL > 0 && terms.TTL > req.Policy.MaxTTL {
		return Terms{}, Errorf(EINVALID, "TTL %s is beyond the policy maximum of %s for this request", terms.TTL, req.Policy.MaxTTL)
	}
	return terms, nil
}

// recordApproval commits one approval of several a request needs: the
// request stays pending with the approval added, and the audit log says
// how many more are needed.
func (s *Service) recordApproval(tx Tx, op Operator, req *TaskRequest, kind DecisionKind, reason string) error {
	if err := tx.PutRequest(req); err != nil {
		return err
	}
	n, required := len(req.Approvals), req.RequiredApprovals()
	msg := fmt.Sprintf("approval %d of %d recorded (as asked)", n, required)
	if kind == DecisionNarrow {
		msg = fmt.Sprintf("approval %d of %d recorded (narrowed)", n, required)
	}
	if n > 1 {
		msg = strings.Replace(msg, "(as asked)", "(as proposed)", 1)
	}
	if reason != "" {
		msg += ": " + reason
	}
	msg += fmt.Sprintf("; %s must approve", plural(required-n, "more operator"))
	e := s.audit(AuditDecision, operatorActor(op), &op, msg)
	e.AgentID, e.RequestID = req.AgentID, req.ID
	e.Data = auditData(map[string]any{"kind": kind, "approval": n, "required": required,
		"requested": req.Terms, "proposed": req.ProposedTerms(), "approvers": approverIDs(req.Approvals)})
	return tx.AppendAudit(e)
}

func approverIDs(as []Approval) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Operator.ID()
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// withinCeiling re-checks terms against the agent's ceiling at decision
// time, in case the configuration changed since the request arrived.
func (s *Service) withinCeiling(agentID string, t Terms) error {
	agent, ok := s.AgentConfig(agentID)
	if !ok {
		return Errorf(EFORBIDDEN, "agent %s is no longer configured", agentID)
	}
	// Resources are exact: the ceiling is the one of this very resource.
	ceiling, ok := agent.CeilingFor(t.Resource)
	if !ok {
		return Errorf(EFORBIDDEN, "agent %s may not hold tokens for %s", agentID, t.Resource)
	}
	for _, a := range t.Actions() {
		if !contains(ceiling, a) {
			return Errorf(EFORBIDDEN, "action %s is beyond agent %s's ceiling", a, agentID)
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

// decidedParent returns the live parent grant of a follow-on being
// decided; the parent may have ended since the follow-on was asked for.
func (s *Service) decidedParent(tx TxReader, parentRequestID string, now time.Time) (*Grant, error) {
	p, err := tx.Request(parentRequestID)
	if err != nil {
		return nil, err
	}
	pg, err := s.liveParent(tx, p, now)
	if err != nil {
		return nil, Errorf(ECONFLICT, "%s", ErrorMessage(err))
	}
	return pg, nil
}

// capToParent cuts the TTL of a follow-on's terms so that, starting now, it
// ends no later than its parent grant, and says whether it had to.
func capToParent(t Terms, parent *Grant, now time.Time) (Terms, bool) {
	left := parent.ExpiresAt.Sub(now).Truncate(time.Second)
	if t.TTL <= left {
		return t, false
	}
	t.TTL = left
	return t, true
}
