package broker

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Standing approvals: when an operator approves a request, they may also
// allow the same agent the same or fewer actions on the same resource
// for a bounded time, so a safe task that repeats every few minutes does
// not need a person each time and needs no permanent policy rule. A
// standing approval is an audited, visible, revocable object; each grant
// it produces names it as approver.

// Audit kinds of standing approvals.
const (
	AuditStandingCreated AuditKind = "standing.created"
	AuditStandingRevoked AuditKind = "standing.revoked"
	AuditStandingUsed    AuditKind = "standing.used"
)

// DefaultMaxStanding is the longest a standing approval may last when the
// configuration names no maximum.
const DefaultMaxStanding = 8 * time.Hour

// StandingState is where a standing approval is in its life.
type StandingState string

const (
	StandingActive  StandingState = "active"
	StandingExpired StandingState = "expired"
	StandingRevoked StandingState = "revoked"
)

// StandingApproval allows an agent's later requests within Terms to be
// approved without a person until ExpiresAt, unless revoked first.
type StandingApproval struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	// Terms bound what it approves: a request must ask for the same
	// resource and no more than these actions, details and TTL.
	Terms Terms `json:"terms"`
	// FromRequest is the request whose approval created it.
	FromRequest string    `json:"from_request"`
	CreatedBy   Operator  `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Reason      string    `json:"reason,omitempty"`
	// Uses are the requests it approved, oldest first.
	Uses      []StandingUse `json:"uses,omitempty"`
	RevokedAt time.Time     `json:"revoked_at,omitzero"`
	RevokedBy *Operator     `json:"revoked_by,omitempty"`
}

// StandingUse is one request a standing approval approved.
type StandingUse struct {
	RequestID string    `json:"request_id"`
	At        time.Time `json:"at"`
}

// State is the standing approval's state at now.
func (s *StandingApproval) State(now time.Time) StandingState {
	switch {
	case !s.RevokedAt.IsZero():
		return StandingRevoked
	case !now.Before(s.ExpiresAt):
		return StandingExpired
	}
	return StandingActive
}

// Operator is the identity the grants it produces are approved under: the
// standing approval, by id, and who made it.
func (s *StandingApproval) Operator() Operator {
	return Operator{Issuer: "writ", Subject: "standing:" + s.ID,
		Name: "standing approval " + s.ID + " by " + s.CreatedBy.Display()}
}

// clone copies everything a caller could change.
func (s *StandingApproval) clone() *StandingApproval {
	c := *s
	c.Terms = s.Terms.Clone()
	c.Uses = slices.Clone(s.Uses)
	if s.RevokedBy != nil {
		op := *s.RevokedBy
		c.RevokedBy = &op
	}
	return &c
}

// covers says why the standing approval does not cover a request of risk
// risk at now, or "" when it does.
func (s *StandingApproval) covers(req *TaskRequest, risk Risk, now time.Time) string {
	switch {
	case s.State(now) != StandingActive:
		return "standing approval " + s.ID + " is " + string(s.State(now))
	case req.AgentID != s.AgentID:
		return "another agent's standing approval"
	case req.ParentID != "":
		return "a follow-on needs a person"
	case risk >= RiskHigh:
		return "the request is " + risk.String() + " risk"
	case req.Terms.Resource != s.Terms.Resource:
		return "resource " + req.Terms.Resource + " is not " + s.Terms.Resource
	}
	if why := req.Terms.NarrowerThan(s.Terms); why != "" {
		return why
	}
	return ""
}

// StandingApprovals is the registry of standing approvals, in memory. It
// decides; the caller makes each change durable and audits it. It is safe
// for concurrent use.
type StandingApprovals struct {
	mu  sync.Mutex
	max time.Duration
	all map[string]*StandingApproval
}

// NewStandingApprovals returns an empty registry whose approvals last at
// most max (DefaultMaxStanding when max is zero).
func NewStandingApprovals(max time.Duration) *StandingApprovals {
	if max <= 0 {
		max = DefaultMaxStanding
	}
	return &StandingApprovals{max: max, all: make(map[string]*StandingApproval)}
}

// Max is the longest a standing approval may last.
func (r *StandingApprovals) Max() time.Duration { return r.max }

// StandingInput is what an operator's approval adds to make a standing
// approval: how long it lasts and why.
type StandingInput struct {
	ID       string // unique, made by the caller
	Operator Operator
	Request  *TaskRequest // the request being approved
	Granted  Terms        // what the approval granted: the standing approval allows no more
	Risk     Risk         // the request's risk (catalogue and policy labels)
	For      time.Duration
	Reason   string
	Now      time.Time
}

// Create records a standing approval. It is refused for high or critical
// risk, for a follow-on, and for longer than the maximum.
func (r *StandingApprovals) Create(in StandingInput) (*StandingApproval, error) {
	s, err := r.Check(in)
	if err != nil {
		return nil, err
	}
	if err := r.Add(s); err != nil {
		return nil, err
	}
	return s, nil
}

// StandingRefusal says why no standing approval may be made from req, a
// request of the given risk, or nil when one may: the one rule the broker
// (Check) and the console (which offers `s` only when it holds) apply.
// High and critical risk need a person each time; a follow-on goes beyond
// its task by definition; a request policy gives to several approvers is
// never approved by a standing approval (approveByStanding), so one made
// from it could never take effect.
func StandingRefusal(req *TaskRequest, risk Risk) error {
	switch {
	case risk >= RiskHigh:
		return Errorf(EFORBIDDEN, "standing approvals are never made for %s-risk requests: each one needs a person", risk)
	case req.ParentID != "":
		return Errorf(EINVALID, "no standing approval for a follow-on: it goes beyond its task by definition")
	case req.RequiredApprovals() > 1:
		return Errorf(EINVALID, "no standing approval for a request policy gives to several approvers: it would never take effect")
	}
	return nil
}

// Check builds the standing approval the input asks for, or says why it
// is refused, without recording it: the caller makes it durable, then
// calls Add.
func (r *StandingApprovals) Check(in StandingInput) (*StandingApproval, error) {
	switch {
	case in.Request == nil || in.ID == "":
		return nil, Errorf(EINVALID, "a standing approval is made from a request being approved")
	case in.For <= 0:
		return nil, Errorf(EINVALID, "a standing approval needs a positive duration")
	case in.For > r.max:
		return nil, Errorf(EINVALID, "a standing approval lasts at most %s; %s asked", shortDuration(r.max), shortDuration(in.For))
	case len(in.Granted.Actions()) == 0:
		return nil, Errorf(EINVALID, "a standing approval needs at least one action")
	}
	if err := StandingRefusal(in.Request, in.Risk); err != nil {
		return nil, err
	}
	if why := in.Granted.NarrowerThan(in.Request.Terms); why != "" {
		return nil, Errorf(EINVALID, "a standing approval may not go beyond the request: %s", why)
	}
	return &StandingApproval{ID: in.ID, AgentID: in.Request.AgentID, Terms: in.Granted.Clone(), FromRequest: in.Request.ID,
		CreatedBy: in.Operator, CreatedAt: in.Now, ExpiresAt: in.Now.Add(in.For), Reason: strings.TrimSpace(in.Reason)}, nil
}

// Add puts a checked standing approval in force.
func (r *StandingApprovals) Add(s *StandingApproval) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.all[s.ID]; dup {
		return Errorf(ECONFLICT, "standing approval %s exists already", s.ID)
	}
	r.all[s.ID] = s.clone()
	return nil
}

// Match finds a live standing approval that covers the request, or nil:
// the caller approves the request under its Operator and then calls
// RecordUse. Among several, the one that expires first is chosen, so the
// longer ones last.
func (r *StandingApprovals) Match(req *TaskRequest, risk Risk, now time.Time) *StandingApproval {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *StandingApproval
	for _, s := range r.all {
		if s.covers(req, risk, now) != "" {
			continue
		}
		if best == nil || s.ExpiresAt.Before(best.ExpiresAt) || (s.ExpiresAt.Equal(best.ExpiresAt) && s.ID < best.ID) {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	return best.clone()
}

// RecordUse records that the standing approval approved a request.
func (r *StandingApprovals) RecordUse(id, requestID string, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.all[id]
	if !ok {
		return Errorf(ENOTFOUND, "no standing approval %s", id)
	}
	s.Uses = append(s.Uses, StandingUse{RequestID: requestID, At: at})
	return nil
}

// Revoke ends a standing approval at once: no request is approved under
// it from now on (grants it already produced continue until revoked).
func (r *StandingApprovals) Revoke(id string, op Operator, now time.Time) (*StandingApproval, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.all[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "no standing approval %s", id)
	}
	if st := s.State(now); st != StandingActive {
		return nil, Errorf(ECONFLICT, "standing approval %s is %s already", id, st)
	}
	s.RevokedAt, s.RevokedBy = now, &op
	return s.clone(), nil
}

// List returns every standing approval, the live ones first, each group
// by expiry.
func (r *StandingApprovals) List(now time.Time) []*StandingApproval {
	r.mu.Lock()
	out := make([]*StandingApproval, 0, len(r.all))
	for _, s := range r.all {
		out = append(out, s.clone())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *StandingApproval) int {
		la, lb := a.State(now) == StandingActive, b.State(now) == StandingActive
		if la != lb {
			if la {
				return -1
			}
			return 1
		}
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// get returns a copy of a standing approval, or nil.
func (r *StandingApprovals) get(id string) *StandingApproval {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.all[id]; ok {
		return s.clone()
	}
	return nil
}

// Restore puts back a standing approval read from the store at start.
func (r *StandingApprovals) Restore(s *StandingApproval) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all[s.ID] = s.clone()
}
