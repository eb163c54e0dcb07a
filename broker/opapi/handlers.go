package opapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// decidedError is a decision that lost the race: the request was decided
// first by someone else, and this says who and how.
type decidedError struct {
	err      error
	decision *broker.Decision
}

func (e *decidedError) Error() string { return e.err.Error() }
func (e *decidedError) Unwrap() error { return e.err }

// readBody decodes an optional JSON body into v.
func readBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return broker.Errorf(broker.EINVALID, "the body could not be read (at most 64 KiB)")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return broker.Errorf(broker.EINVALID, "the body is not the JSON this call takes: %s", clip(err.Error()))
	}
	if dec.More() {
		return broker.Errorf(broker.EINVALID, "the body has data after its JSON object")
	}
	return nil
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, SessionInfo{Operator: c.op, Expires: time.Unix(c.claims.Expiry, 0).UTC(), FreshAuth: broker.Duration(s.opts.FreshAuth)})
}

func (s *Server) config(w http.ResponseWriter, r *http.Request, c *caller) {
	cfg := s.svc.Config()
	out := Config{
		Limits:      Limits{DefaultTTL: broker.Duration(cfg.Limits.DefaultTTL), MaxTTL: broker.Duration(cfg.Limits.MaxTTL), ReviewDeadline: broker.Duration(cfg.Limits.ReviewDeadline)},
		RequireDPoP: cfg.RequireDPoP, Approvers: cfg.Approvers, PolicyFile: cfg.PolicyFile,
		Issuer: s.issuer, FreshAuth: broker.Duration(s.opts.FreshAuth), State: s.svc.IssuerState(),
		Agents: s.agents(), Resources: []Resource{},
	}
	for _, res := range cfg.Resources {
		out.Resources = append(out.Resources, Resource{URI: res.URI, Name: res.Name, Description: res.Description, Scopes: res.Scopes})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) agents() []Agent {
	out := []Agent{}
	for _, v := range s.svc.Agents() {
		a := Agent{ID: v.Agent.ID, Name: v.Agent.Name, Owner: v.Agent.Owner, Ceiling: v.Agent.Ceiling,
			MaxTTL: broker.Duration(v.Agent.MaxTTL), Workload: v.Agent.Workload, State: v.State}
		for _, k := range v.Agent.Keys {
			if k.Key != nil {
				a.Keys = append(a.Keys, k.Public())
			}
		}
		out = append(out, a)
	}
	return out
}

func (s *Server) issuerState(w http.ResponseWriter, r *http.Request, c *caller) {
	h := s.svc.StoreHealth()
	writeJSON(w, http.StatusOK, IssuerStatus{IssuerState: s.svc.IssuerState(), Store: &h})
}

func (s *Server) policy(w http.ResponseWriter, r *http.Request, c *caller) {
	st := PolicyStatus{}
	if s.opts.Policy != nil {
		st = s.opts.Policy()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, c *caller) {
	if st := r.URL.Query().Get("state"); st != "" && st != string(broker.RequestPending) {
		s.fail(w, r, broker.Errorf(broker.EINVALID, "only pending requests are listed; show a decided one by id"))
		return
	}
	reqs, err := s.svc.Pending(r.Context())
	if reqs == nil {
		reqs = []*broker.TaskRequest{}
	}
	s.reply(w, r, reqs, err)
}

func (s *Server) showRequest(w http.ResponseWriter, r *http.Request, c *caller) {
	req, err := s.svc.Request(r.Context(), r.PathValue("id"))
	s.reply(w, r, req, err)
}

func (s *Server) showDecision(w http.ResponseWriter, r *http.Request, c *caller) {
	d, err := s.svc.Decision(r.Context(), r.PathValue("id"))
	s.reply(w, r, d, err)
}

// requestRisk is the risk of what approving the request grants: the
// catalogue's risk of the proposed terms (critical for a resource the
// catalogue does not know) or the policy's label, whichever is higher.
func (s *Server) requestRisk(req *broker.TaskRequest, terms broker.Terms) broker.Risk {
	risk := broker.RiskCritical
	if res, ok := s.svc.Config().Resource(terms.Resource); ok {
		risk = res.RiskOf(terms)
	}
	if req.Policy != nil && req.Policy.Risk > risk {
		risk = req.Policy.Risk
	}
	return risk
}

// decide runs an approval, narrowing or denial and says who won a race.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, c *caller, kind broker.DecisionKind) {
	id := r.PathValue("id")
	var in DecideInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.svc.Request(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if kind != broker.DecisionDeny {
		terms := req.ProposedTerms()
		if kind == broker.DecisionNarrow {
			if in.Terms == nil {
				s.fail(w, r, broker.Errorf(broker.EINVALID, "narrowing needs the terms to grant"))
				return
			}
			terms = *in.Terms
		}
		if s.requestRisk(req, terms) >= broker.RiskCritical {
			if err := s.requireFresh(c, "approving a critical-risk request"); err != nil {
				s.fail(w, r, err)
				return
			}
		}
	}
	var res DecisionResult
	switch kind {
	case broker.DecisionApprove:
		res.Grant, err = s.svc.Approve(r.Context(), c.op, id)
	case broker.DecisionNarrow:
		res.Grant, err = s.svc.Narrow(r.Context(), c.op, id, *in.Terms, in.Reason)
	case broker.DecisionDeny:
		res.Decision, err = s.svc.Deny(r.Context(), c.op, id, in.Reason)
	}
	if err != nil {
		s.fail(w, r, s.lostRace(r, id, err))
		return
	}
	if res.Request, err = s.svc.Request(r.Context(), id); err != nil {
		res.Request = nil // the decision stands; the request is only for show
	}
	if res.Decision == nil && res.Request != nil && res.Request.DecisionID != "" {
		res.Decision, _ = s.svc.Decision(r.Context(), res.Request.DecisionID)
	}
	writeJSON(w, http.StatusOK, res)
}

// lostRace attaches the winning decision to a conflict on a request that
// is no longer pending.
func (s *Server) lostRace(r *http.Request, id string, err error) error {
	if broker.ErrorCode(err) != broker.ECONFLICT {
		return err
	}
	req, rerr := s.svc.Request(r.Context(), id)
	if rerr != nil || req.DecisionID == "" {
		return err
	}
	d, derr := s.svc.Decision(r.Context(), req.DecisionID)
	if derr != nil {
		return err
	}
	return &decidedError{err: err, decision: d}
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, c *caller) {
	s.decide(w, r, c, broker.DecisionApprove)
}

func (s *Server) narrow(w http.ResponseWriter, r *http.Request, c *caller) {
	s.decide(w, r, c, broker.DecisionNarrow)
}

func (s *Server) deny(w http.ResponseWriter, r *http.Request, c *caller) {
	s.decide(w, r, c, broker.DecisionDeny)
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, c *caller) {
	recent := time.Duration(0)
	if v := r.URL.Query().Get("recent"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			s.fail(w, r, broker.Errorf(broker.EINVALID, "recent must be a duration such as 1h, at most 720h"))
			return
		}
		recent = d
	}
	gs, err := s.svc.Grants(r.Context(), recent)
	if gs == nil {
		gs = []*broker.Grant{}
	}
	s.reply(w, r, gs, err)
}

func (s *Server) showGrant(w http.ResponseWriter, r *http.Request, c *caller) {
	g, err := s.svc.Grant(r.Context(), r.PathValue("id"))
	s.reply(w, r, g, err)
}

// revokeGrant revokes one grant. Revoking a grant that is already revoked
// succeeds: two operators revoking the same grant both get the revocation
// that ended it, marked Already for the later one.
func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	rev, err := s.svc.Revoke(r.Context(), c.op, id, in.Reason)
	if err == nil {
		writeJSON(w, http.StatusOK, RevocationResult{Revocation: rev})
		return
	}
	if broker.ErrorCode(err) == broker.ECONFLICT {
		if g, gerr := s.svc.Grant(r.Context(), id); gerr == nil && g.State == broker.GrantRevoked {
			prev := &broker.Revocation{Scope: broker.RevokeGrant, Target: g.ID, Reason: g.EndReason, At: g.EndedAt}
			if g.EndedBy != nil {
				prev.Operator = *g.EndedBy
			}
			writeJSON(w, http.StatusOK, RevocationResult{Revocation: prev, Already: true})
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) revokeAgent(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rev, err := s.svc.RevokeAgent(r.Context(), c.op, r.PathValue("id"), in.Reason, in.Quarantine)
	s.reply(w, r, RevocationResult{Revocation: rev}, err)
}

func (s *Server) quarantine(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rev, err := s.svc.RevokeAgent(r.Context(), c.op, r.PathValue("id"), in.Reason, true)
	s.reply(w, r, RevocationResult{Revocation: rev}, err)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request, c *caller) {
	id := r.PathValue("id")
	if err := s.svc.Release(r.Context(), c.op, id); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, a := range s.agents() {
		if a.ID == id {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	writeJSON(w, http.StatusOK, Agent{ID: id})
}

func (s *Server) revokeAll(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.requireFresh(c, "revoking everything"); err != nil {
		s.fail(w, r, err)
		return
	}
	freeze := in.Freeze == nil || *in.Freeze
	rev, err := s.svc.RevokeAll(r.Context(), c.op, in.Reason, freeze)
	s.reply(w, r, RevocationResult{Revocation: rev}, err)
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	err := s.svc.Freeze(r.Context(), c.op, in.Reason)
	s.reply(w, r, s.svc.IssuerState(), err)
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request, c *caller) {
	var in RevokeInput
	if err := readBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.requireFresh(c, "unfreezing issuance"); err != nil {
		s.fail(w, r, err)
		return
	}
	err := s.svc.Unfreeze(r.Context(), c.op, in.Reason)
	s.reply(w, r, s.svc.IssuerState(), err)
}

// audit is a page of the audit log, newest first:
// ?before=SEQ&limit=N&agent=ID&grant=ID&kind=K (kind repeatable).
func (s *Server) audit(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	f := broker.AuditFilter{AgentID: q.Get("agent"), GrantID: q.Get("grant")}
	var err error
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.fail(w, r, broker.Errorf(broker.EINVALID, "before must be an audit sequence number"))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			s.fail(w, r, broker.Errorf(broker.EINVALID, "limit must be between 1 and 1000"))
			return
		}
	}
	for _, k := range q["kind"] {
		f.Kinds = append(f.Kinds, broker.AuditKind(k))
	}
	es, err := s.svc.Audit(r.Context(), f)
	if es == nil {
		es = []*broker.AuditEntry{}
	}
	s.reply(w, r, es, err)
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, c *caller) {
	n, err := s.svc.VerifyAudit(r.Context())
	out := AuditVerify{Entries: n, OK: err == nil}
	var ce *broker.ChainError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		out.Error = ce.Error()
	default:
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, s.agents())
}
