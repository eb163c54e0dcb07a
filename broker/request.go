package broker

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SubmitInput is what an agent asks for.
type SubmitInput struct {
	LoginHint string
	Intent    string
	Scopes    []string
	Details   []AuthorizationDetail
	Resource  string
	// TTL is the grant lifetime asked for; zero means the default.
	TTL time.Duration
	// Expiry is how long the request may wait for review; zero or more
	// than the configured review deadline means the review deadline.
	Expiry time.Duration
	// ParentID is the auth_req_id of the task this one follows on from.
	ParentID string
}

// MaxIntentLength bounds the intent an operator must read.
const MaxIntentLength = 1000

// Submit records an agent's task request for review. It refuses at once
// anything beyond the agent's ceiling, a frozen issuer, a quarantined
// agent, and an agent over its rate limit.
func (s *Service) Submit(ctx context.Context, agentID string, in SubmitInput) (*TaskRequest, error) {
	agent, ok := s.AgentConfig(agentID)
	if !ok {
		return nil, Errorf(EUNAUTHORIZED, "unknown agent %q", agentID).WithReason("invalid_client")
	}
	now := s.now().UTC()
	if s.IssuerState().Frozen {
		return nil, Errorf(EFROZEN, "issuance is frozen; no requests are taken").WithReason(ReasonAccessDenied)
	}
	if s.agentState(agentID).Quarantined {
		return nil, Errorf(EFORBIDDEN, "agent %s is quarantined", agentID).WithReason(ReasonAccessDenied)
	}
	// The rate limit comes before any checking, so a flood costs little.
	if !s.limiter.allow(agentID, now) {
		s.noteThrottled(ctx, agentID, "rate limit")
		return nil, Errorf(ETHROTTLED, "agent %s is sending requests too fast", agentID).WithReason(ReasonSlowDown)
	}
	terms, res, err := s.checkRequest(agent, in)
	if err != nil {
		return nil, err
	}
	deadline := s.cfg.Limits.ReviewDeadline
	if in.Expiry > 0 && in.Expiry < deadline {
		deadline = in.Expiry
	}
	req := &TaskRequest{
		ID:        s.newSecretID(20),
		AgentID:   agentID,
		LoginHint: in.LoginHint,
		Intent:    in.Intent,
		Terms:     terms,
		ParentID:  in.ParentID,
		State:     RequestPending,
		CreatedAt: now,
		Deadline:  now.Add(deadline),
		Interval:  s.opts.PollInterval,
	}
	// The count comes from memory, so the cap may be overshot by the
	// few submissions in flight at once; it is a brake, not a lock.
	if pending := s.pendingCount(agentID); pending >= s.opts.MaxPendingPerAgent {
		s.noteThrottled(ctx, agentID, "too many pending")
		return nil, Errorf(ETHROTTLED, "agent %s already has %d requests waiting for review", agentID, pending).WithReason(ReasonSlowDown)
	}
	var parent *Grant
	if in.ParentID != "" {
		err := s.store.View(ctx, func(tx TxReader) error {
			var err error
			parent, err = s.submittedParent(tx, agentID, in.ParentID, now)
			return err
		})
		if err != nil {
			return nil, err
		}
		// A follow-on lives inside its parent: it asks for no more time
		// than the parent has left.
		if capped, did := capToParent(req.Terms, parent, now); did {
			req.Terms = capped
		}
	}
	// Policy is evaluated before the write transaction opens, so a slow
	// rule never holds the store's write lock (a revocation never waits
	// for another request's policy); inside it only the parent's liveness
	// is checked again.
	pr, fx := s.evaluatePolicy(ctx, PolicyInput{Request: req, Agent: agent, Resource: res, Parent: parent, Now: now})
	if pr.Verdict == VerdictDeny {
		s.noteRefused(ctx, req, pr, policyRefusal(pr))
		s.applyOnDeny(ctx, req, fx, parent)
		return nil, policyRefusal(pr)
	}
	if parent != nil && req.Terms.TTL < terms.TTL {
		pr.Trace = withTraceLine(pr.Trace, fmt.Sprintf("ttl: %s asked, cut to the %s its parent grant has left",
			shortDuration(terms.TTL), shortDuration(req.Terms.TTL)))
	}
	applyPolicy(req, &pr)
	applyDropActions(req, &pr, fx)
	asked := req.Terms
	var submitted *TaskRequest
	var out decided
	var refused error
	// One durable commit: the submission, and a policy's approval of it.
	// The request is written once, as it ends up (pending, or approved).
	err = s.store.Batch(ctx, func(tx Tx) error {
		// Batch may run this more than once: start from what was decided above.
		r := *req
		r.Terms = asked.Clone()
		p := pr
		p.Trace = slices.Clone(pr.Trace)
		r.Policy = &p
		submitted, out, refused = &r, decided{}, nil
		if in.ParentID != "" {
			if _, refused = s.submittedParent(tx, agentID, in.ParentID, now); refused != nil {
				return nil // nothing written; the group commits without it
			}
		}
		e := s.audit(AuditRequestSubmitted, agentActor(agentID), nil, r.Intent)
		e.AgentID, e.RequestID = agentID, r.ID
		e.Data = auditData(map[string]any{"requested": r.Terms, "login_hint": r.LoginHint, "parent": r.ParentID, "policy": pr, "effects": fx})
		if err := tx.AppendAudit(e); err != nil {
			return err
		}
		if p.AutoApprove {
			d := r // decided on a copy: r stays the request as submitted
			plan, err := s.checkDecision(tx, PolicyOperator(p.Rule), &d, DecisionApprove, nil, "auto_approve by policy rule "+p.Rule, now)
			if err == nil {
				out, err = s.writeDecision(tx, plan, now)
				return err
			}
			if !refusal(err) {
				return err
			}
			// The approval cannot take effect (issuance frozen, the agent
			// quarantined since the checks above): an operator decides, and
			// the trace says why.
			s.log.Warn("auto-approval did not take effect", "request", short(r.ID), "rule", p.Rule, "err", err)
			p.AutoApprove, p.Verdict = false, VerdictReview
			p.Trace = append(p.Trace, "auto_approve did not take effect ("+ErrorMessage(err)+"): an operator decides")
		}
		return tx.PutRequest(&r)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return nil, err
	}
	req = submitted
	s.touchAgent(agentID, now)
	c := *req
	ast := s.agentState(agentID)
	s.publish(Event{Kind: EventRequestSubmitted, At: now, Request: &c, Agent: &ast})
	if out.req != nil {
		s.publishDecided(out.req, out.dec, out.grant, now)
		return out.req, nil
	}
	if r := s.approveByStanding(ctx, req); r != nil {
		return r, nil
	}
	return req, nil
}

// applyPolicy applies what the policy decided to a request being
// submitted: its TTL is capped at the policy's maximum.
func applyPolicy(req *TaskRequest, pr *PolicyResult) {
	if pr.MaxTTL > 0 && req.Terms.TTL > pr.MaxTTL {
		pr.Trace = withTraceLine(pr.Trace, fmt.Sprintf("ttl: %s asked, capped to the policy maximum of %s",
			shortDuration(req.Terms.TTL), shortDuration(pr.MaxTTL)))
		req.Terms.TTL = pr.MaxTTL
	}
}

// withTraceLine adds a line to a policy trace, keeping the verdict last.
func withTraceLine(trace []string, line string) []string {
	if n := len(trace); n > 0 && strings.HasPrefix(trace[n-1], "verdict:") {
		return append(trace[:n-1:n-1], line, trace[n-1])
	}
	return append(trace, line)
}

// shortDuration writes 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// policyRefusal is the error an agent gets for a request policy denied:
// the rule and its reason, or the trace when the policy gave neither.
func policyRefusal(pr PolicyResult) error {
	msg := "refused by policy"
	if pr.Rule != "" {
		msg += " rule " + pr.Rule
	}
	switch {
	case pr.Reason != "":
		msg += ": " + pr.Reason
	case pr.Rule == "" && len(pr.Trace) > 0:
		msg += ": " + strings.Join(pr.Trace, "; ")
	}
	return Errorf(EFORBIDDEN, "%s", msg).WithReason(ReasonAccessDenied)
}

// noteRefused records a submission policy refused: nothing was stored,
// but the operator can see in the audit log what was asked and why it was
// refused. The rate limit bounds how many an agent can cause.
func (s *Service) noteRefused(ctx context.Context, req *TaskRequest, pr PolicyResult, refusal error) {
	req.Policy = &pr
	err := s.store.Batch(ctx, func(tx Tx) error {
		e := s.audit(AuditRequestRefused, agentActor(req.AgentID), nil, ErrorMessage(refusal))
		e.AgentID = req.AgentID
		e.Data = auditData(map[string]any{"intent": req.Intent, "requested": req.Terms, "login_hint": req.LoginHint,
			"parent": req.ParentID, "policy": pr})
		return tx.AppendAudit(e)
	})
	if err != nil {
		s.log.Error("record refused request", "agent", req.AgentID, "err", err)
		return
	}
	c := *req
	s.publish(Event{Kind: EventRequestRefused, At: s.now(), Request: &c})
}

// refusal reports whether err is the domain refusing a decision (frozen,
// quarantined, not pending, …), which checkDecision says before anything
// is written, rather than the store failing.
func refusal(err error) bool {
	switch ErrorCode(err) {
	case EFROZEN, EFORBIDDEN, ECONFLICT, EINVALID, EEXPIRED, EUNAUTHORIZED, ENOTFOUND:
		return true
	}
	return false
}

// checkRequest validates what an agent asks for against the catalogue and
// its ceiling, and returns the terms with defaults applied.
func (s *Service) checkRequest(agent *Agent, in SubmitInput) (Terms, *Resource, error) {
	invalid := func(reason, format string, args ...any) error {
		return Errorf(EINVALID, format, args...).WithReason(reason)
	}
	if !slices.Contains(s.cfg.ApproverQueues(), in.LoginHint) {
		return Terms{}, nil, invalid(ReasonUnknownUserID, "login_hint %q names no approver queue", in.LoginHint)
	}
	if strings.TrimSpace(in.Intent) == "" {
		return Terms{}, nil, invalid(ReasonInvalidBinding, "the intent (binding_message) is required: say what the task is")
	}
	if !utf8.ValidString(in.Intent) || utf8.RuneCountInString(in.Intent) > MaxIntentLength {
		return Terms{}, nil, invalid(ReasonInvalidBinding, "the intent must be valid UTF-8 of at most %d characters", MaxIntentLength)
	}
	if u, err := url.Parse(in.Resource); in.Resource == "" || err != nil || !u.IsAbs() || u.Fragment != "" {
		return Terms{}, nil, invalid(ReasonInvalidTarget, "resource must be one absolute URI without a fragment")
	}
	res, ok := s.cfg.Resource(in.Resource)
	if !ok {
		return Terms{}, nil, invalid(ReasonInvalidTarget, "resource %s is not a configured resource", in.Resource)
	}
	ceiling, ok := agent.CeilingFor(in.Resource)
	if !ok {
		return Terms{}, nil, invalid(ReasonInvalidTarget, "agent %s may not ask for resource %s", agent.ID, in.Resource)
	}
	scopes := uniq(in.Scopes)
	if len(slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == ScopeOpenID })) == 0 {
		return Terms{}, nil, invalid(ReasonInvalidScope, "scope must name at least one scope of %s", in.Resource)
	}
	for _, sc := range scopes {
		if sc == ScopeOpenID {
			continue
		}
		if _, ok := res.Scope(sc); !ok {
			return Terms{}, nil, invalid(ReasonInvalidScope, "scope %s is not in the catalogue of %s", sc, in.Resource)
		}
		if !slices.Contains(ceiling, sc) {
			return Terms{}, nil, invalid(ReasonInvalidScope, "scope %s is beyond agent %s's ceiling", sc, agent.ID)
		}
	}
	for i, d := range in.Details {
		if err := checkDetail(d, res, ceiling); err != "" {
			return Terms{}, nil, invalid(ReasonInvalidDetails, "authorization_details[%d]: %s", i, err)
		}
	}
	// A detail may only qualify what the scopes name, never add to it.
	if why := (Terms{Scopes: scopes, Details: in.Details}).DetailActionsOutsideScopes(); why != "" {
		return Terms{}, nil, invalid(ReasonInvalidDetails, "%s", why)
	}
	maxTTL := durationMin(s.cfg.Limits.MaxTTL, agent.MaxTTL)
	ttl := in.TTL
	if ttl == 0 {
		ttl = durationMin(s.cfg.Limits.DefaultTTL, maxTTL)
	}
	if ttl < 0 {
		return Terms{}, nil, invalid(ReasonInvalidRequest, "requested TTL must be positive")
	}
	if ttl > maxTTL {
		return Terms{}, nil, invalid(ReasonInvalidRequest, "requested TTL %s is beyond agent %s's maximum of %s", ttl, agent.ID, maxTTL)
	}
	return Terms{Scopes: scopes, Details: in.Details, Resource: in.Resource, TTL: ttl}, res, nil
}

// checkDetail checks one authorization detail against the resource: its
// type is writ's task type, its locations lie within the resource, and its
// actions are scopes of the agent's ceiling there.
func checkDetail(d AuthorizationDetail, res *Resource, ceiling []string) string {
	if d.Type != TaskDetailType {
		return fmt.Sprintf("unknown type %q (writ accepts %q)", d.Type, TaskDetailType)
	}
	if len(d.Actions) == 0 {
		return "actions is required"
	}
	for _, l := range d.Locations {
		if _, err := CheckLocation(l, res.URI); err != nil {
			return ErrorMessage(err)
		}
	}
	for _, a := range d.Actions {
		if _, ok := res.Scope(a); !ok {
			return fmt.Sprintf("action %s is not in the catalogue of %s", a, res.URI)
		}
		if !slices.Contains(ceiling, a) {
			return fmt.Sprintf("action %s is beyond the agent's ceiling", a)
		}
	}
	if utf8.RuneCountInString(d.Intent) > MaxIntentLength {
		return "intent is too long"
	}
	return ""
}

func uniq(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// noteThrottled records a throttled submission for the operator to see.
// A flooding agent must not turn every refusal into an fsync: the count is
// kept in memory and written, with an audit entry, on the first refusal
// and every tenth after it.
func (s *Service) noteThrottled(ctx context.Context, agentID, why string) {
	s.mu.Lock()
	st, ok := s.agents[agentID]
	if !ok {
		st.ID = agentID
	}
	st.Throttled++
	s.agents[agentID] = st
	s.mu.Unlock()
	if st.Throttled%10 == 1 {
		err := s.store.Batch(ctx, func(tx Tx) error {
			stored, err := tx.AgentState(agentID)
			if err != nil {
				return err
			}
			stored.ID = agentID
			stored.Throttled = max(stored.Throttled, st.Throttled)
			if err := tx.PutAgentState(stored); err != nil {
				return err
			}
			e := s.audit(AuditRequestThrottled, agentActor(agentID), nil, fmt.Sprintf("submission refused (%s); %d refused so far", why, st.Throttled))
			e.AgentID = agentID
			return tx.AppendAudit(e)
		})
		if err != nil {
			s.log.Error("record throttled request", "agent", agentID, "err", err)
		}
	}
	s.publish(Event{Kind: EventRequestThrottled, At: s.now(), Agent: &st})
}

// touchAgent notes when an agent was last seen, in memory only.
func (s *Service) touchAgent(id string, now time.Time) {
	s.mu.Lock()
	a, ok := s.agents[id]
	if !ok {
		a.ID = id
	}
	a.LastSeen = now
	s.agents[id] = a
	s.mu.Unlock()
}

// submittedParent returns the live parent grant a follow-on names, which
// must be a task of the same agent.
func (s *Service) submittedParent(tx TxReader, agentID, parentID string, now time.Time) (*Grant, error) {
	p, err := tx.Request(parentID)
	if err != nil || p.AgentID != agentID {
		return nil, Errorf(EINVALID, "parent_auth_req_id names no task of this agent").WithReason(ReasonInvalidRequest)
	}
	return s.liveParent(tx, p, now)
}

// liveParent returns the grant of a follow-on's parent task, which must be
// granted and still live: a follow-on of a denied, expired or revoked task
// would be a way around the revocation, so it is refused.
func (s *Service) liveParent(tx TxReader, p *TaskRequest, now time.Time) (*Grant, error) {
	if p.GrantID == "" {
		return nil, Errorf(EINVALID, "the parent task is %s, not granted: a follow-on needs a granted parent", p.State).WithReason(ReasonInvalidRequest)
	}
	g, err := tx.Grant(p.GrantID)
	if err != nil {
		return nil, err
	}
	st, err := statusIn(tx, g, now)
	if err != nil {
		return nil, err
	}
	if !st.Live() {
		return nil, Errorf(EINVALID, "the parent task's grant %s: ask for a new task instead", st.Why()).WithReason(ReasonInvalidRequest)
	}
	return g, nil
}
