package broker

import (
	"time"

	"github.com/writhq/writ/wire"
)

// RequestState is where a task request is in its lifecycle:
// pending → approved | denied | expired | cancelled; approved → redeemed.
type RequestState string

const (
	RequestPending   RequestState = "pending"
	RequestApproved  RequestState = "approved"
	RequestDenied    RequestState = "denied"
	RequestExpired   RequestState = "expired"
	RequestCancelled RequestState = "cancelled"
	RequestRedeemed  RequestState = "redeemed"
)

// GrantState is where a grant is in its lifecycle:
// active → completed | expired | revoked.
type GrantState string

const (
	GrantActive    GrantState = "active"
	GrantCompleted GrantState = "completed"
	GrantExpired   GrantState = "expired"
	GrantRevoked   GrantState = "revoked"
)

// TaskDetailType is writ's RFC 9396 authorization_details type.
const TaskDetailType = wire.TaskDetailType

// AuthorizationDetail is one RFC 9396 object of writ's task type (the wire
// type its SDKs read). An object grants the cartesian product of its lists.
// Locations, Actions, Datatypes and Privileges may be narrowed by an
// operator (each to a subset); Identifier and Intent are fixed by the
// agent, Intent is display-only.
type AuthorizationDetail = wire.AuthorizationDetail

// Terms are what a request asks for or a decision grants.
type Terms struct {
	Scopes   []string              `json:"scopes"`
	Details  []AuthorizationDetail `json:"authorization_details,omitempty"`
	Resource string                `json:"resource"`
	TTL      time.Duration         `json:"ttl"`
}

// Operator is a person signed in with OIDC, identified by (Issuer, Subject).
// Email and Name are for display only.
type Operator struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	Email   string `json:"email,omitempty"`
	// EmailVerified says the identity provider vouched for Email
	// (email_verified); only a verified email may identify an owner.
	EmailVerified bool      `json:"email_verified,omitempty"`
	Name          string    `json:"name,omitempty"`
	AuthTime      time.Time `json:"auth_time,omitzero"`
	// Dev marks an operator signed in at the development provider.
	Dev bool `json:"dev,omitempty"`
}

// ID is the operator's stable identity, "iss|sub".
func (o Operator) ID() string { return o.Issuer + "|" + o.Subject }

// Display is how the console names the operator.
func (o Operator) Display() string {
	switch {
	case o.Name != "" && o.Email != "":
		return o.Name + " <" + o.Email + ">"
	case o.Email != "":
		return o.Email
	case o.Name != "":
		return o.Name
	}
	return o.Subject
}

// System is the actor for what writ does by itself (expiry).
var System = Operator{Issuer: "writ", Subject: "system"}

// TaskRequest is an agent's ask. Its ID is the CIBA auth_req_id.
type TaskRequest struct {
	ID        string       `json:"id"`
	AgentID   string       `json:"agent_id"`
	LoginHint string       `json:"login_hint"`
	Intent    string       `json:"intent"` // as the agent sent it; neutralise before display
	Terms     Terms        `json:"terms"`
	ParentID  string       `json:"parent_id,omitempty"` // the parent request, for a follow-on
	State     RequestState `json:"state"`
	CreatedAt time.Time    `json:"created_at"`
	Deadline  time.Time    `json:"deadline"`
	ClosedAt  time.Time    `json:"closed_at,omitzero"`
	// DecisionID and GrantID are set once an operator decides.
	DecisionID string `json:"decision_id,omitempty"`
	GrantID    string `json:"grant_id,omitempty"`
	// Interval is the poll interval the agent was told; LastPoll drives slow_down.
	Interval time.Duration `json:"interval"`
	LastPoll time.Time     `json:"last_poll,omitzero"`
	// Policy is the evaluation at submission, shown in the console.
	Policy *PolicyResult `json:"policy,omitempty"`
	// Approvals are the operators' approvals recorded so far, oldest
	// first, when policy requires more than one (see RequiredApprovals).
	Approvals []Approval `json:"approvals,omitempty"`
}

// Approval is one operator's approval of a request that needs several.
// Terms are what that operator approved: the request as asked or
// narrowed by the first approver, or narrowed further by a later one.
type Approval struct {
	Operator Operator     `json:"operator"`
	At       time.Time    `json:"at"`
	Kind     DecisionKind `json:"kind"` // approve or narrow
	Terms    Terms        `json:"terms"`
	Reason   string       `json:"reason,omitempty"`
}

// RequiredApprovals is how many distinct operators must approve the
// request before a grant is made: 1 unless policy asked for more.
func (r *TaskRequest) RequiredApprovals() int {
	if r.Policy != nil && r.Policy.RequireApprovals > 1 {
		return r.Policy.RequireApprovals
	}
	return 1
}

// ProposedTerms are what the next approver approves: the terms of the
// latest recorded approval, or the request as asked when there is none.
func (r *TaskRequest) ProposedTerms() Terms {
	if n := len(r.Approvals); n > 0 {
		return r.Approvals[n-1].Terms
	}
	return r.Terms
}

// ApprovedBy reports whether the operator has already approved the request.
func (r *TaskRequest) ApprovedBy(op Operator) bool {
	for _, a := range r.Approvals {
		if a.Operator.ID() == op.ID() {
			return true
		}
	}
	return false
}

// PolicyResult is a policy evaluation and its trace. The effects are
// applied by the Service: at submission (deny, max_ttl, auto-approve) and
// at decision time (require_approvals, max_ttl).
type PolicyResult struct {
	Verdict string   `json:"verdict"` // "review", "deny" or "auto-approve"
	Risk    Risk     `json:"risk,omitempty"`
	Trace   []string `json:"trace,omitempty"`
	// Rule names the rule that decided a deny or auto-approve verdict.
	Rule string `json:"rule,omitempty"`
	// Reason is what the agent is told when the verdict is deny.
	Reason string `json:"reason,omitempty"`
	// AutoApprove approves the request without a person, under the
	// policy operator of Rule (see PolicyOperator).
	AutoApprove bool `json:"auto_approve,omitempty"`
	// MaxTTL caps the request's TTL and any narrowing of it; zero: no cap.
	MaxTTL time.Duration `json:"max_ttl,omitempty"`
	// RequireApprovals is how many distinct operators must approve; 0 or
	// 1 means one.
	RequireApprovals int `json:"require_approvals,omitempty"`
}

// DecisionKind is how an operator decided.
type DecisionKind string

const (
	DecisionApprove DecisionKind = "approve"
	DecisionNarrow  DecisionKind = "narrow"
	DecisionDeny    DecisionKind = "deny"
)

// Decision is an operator's verdict on a request.
type Decision struct {
	ID        string       `json:"id"`
	RequestID string       `json:"request_id"`
	Kind      DecisionKind `json:"kind"`
	Operator  Operator     `json:"operator"`
	Reason    string       `json:"reason,omitempty"`
	At        time.Time    `json:"at"`
	Requested Terms        `json:"requested"`
	Granted   *Terms       `json:"granted,omitempty"` // nil for a denial
}

// Grant is the authority a decision created.
type Grant struct {
	ID         string     `json:"id"`
	RequestID  string     `json:"request_id"`
	DecisionID string     `json:"decision_id"`
	AgentID    string     `json:"agent_id"`
	ParentID   string     `json:"parent_id,omitempty"` // the parent grant, for a follow-on
	Children   []string   `json:"children,omitempty"`  // follow-on grants, revoked with this one
	Intent     string     `json:"intent"`
	Terms      Terms      `json:"terms"`
	Approver   Operator   `json:"approver"`
	State      GrantState `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	EndedAt    time.Time  `json:"ended_at,omitzero"`
	EndReason  string     `json:"end_reason,omitempty"`
	EndedBy    *Operator  `json:"ended_by,omitempty"`
	// EndKind is the typed cause of the end (StatusOf reads it), and
	// EndParent the parent grant whose end ended this one.
	EndKind   EndKind `json:"end_kind,omitempty"`
	EndParent string  `json:"end_parent,omitempty"`
	// Epoch and AgentEpoch are the revocation epochs at approval: when the
	// global or the agent's epoch moves past them the grant is revoked.
	Epoch      uint64 `json:"epoch"`
	AgentEpoch uint64 `json:"agent_epoch"`
	// Token is the jti of the one token minted for this grant, and JKT the
	// DPoP key thumbprint it is bound to ("" for a bearer token).
	TokenJTI string `json:"token_jti,omitempty"`
	JKT      string `json:"jkt,omitempty"`
	// Use accounting, for the console and the post-revocation report.
	Uses             int64     `json:"uses"`
	LastUse          time.Time `json:"last_use,omitzero"`
	RefusedAfterEnd  int64     `json:"refused_after_end"`
	AcceptedAfterEnd int64     `json:"accepted_after_end"`
}

// Token is the record of a minted access token. The token itself is never
// stored: only what identifies it.
type Token struct {
	JTI       string    `json:"jti"`
	GrantID   string    `json:"grant_id"`
	AgentID   string    `json:"agent_id"`
	KeyID     string    `json:"kid"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	JKT       string    `json:"jkt,omitempty"`
}

// RevocationScope is what a revocation covers.
type RevocationScope string

const (
	RevokeGrant RevocationScope = "grant"
	RevokeAgent RevocationScope = "agent"
	RevokeAll   RevocationScope = "all"
)

// Revocation records one revocation.
type Revocation struct {
	ID       string          `json:"id"`
	Scope    RevocationScope `json:"scope"`
	Target   string          `json:"target,omitempty"` // grant id or agent id
	Operator Operator        `json:"operator"`
	Reason   string          `json:"reason,omitempty"`
	At       time.Time       `json:"at"`
	Epoch    uint64          `json:"epoch,omitempty"` // the new epoch, for agent and all
	Freeze   bool            `json:"freeze,omitempty"`
	Grants   int             `json:"grants"` // grants it ended, for a grant revocation (0 for an epoch: not counted, to stay O(1))
}

// IssuerState is the global state of the issuer.
type IssuerState struct {
	Frozen    bool      `json:"frozen"`
	FrozenAt  time.Time `json:"frozen_at,omitzero"`
	FrozenBy  *Operator `json:"frozen_by,omitempty"`
	FrozenWhy string    `json:"frozen_why,omitempty"`
	Epoch     uint64    `json:"epoch"`
	EpochAt   time.Time `json:"epoch_at,omitzero"`
	// Epochs records the latest moves of Epoch: who, when, why.
	Epochs []EpochMark `json:"epochs,omitempty"`
}

// AgentState is the mutable state of a registered agent.
type AgentState struct {
	ID          string      `json:"id"`
	Epoch       uint64      `json:"epoch"`
	EpochAt     time.Time   `json:"epoch_at,omitzero"`
	Epochs      []EpochMark `json:"epochs,omitempty"` // the latest moves of Epoch
	Quarantined bool        `json:"quarantined"`
	LastSeen    time.Time   `json:"last_seen,omitzero"`
	Throttled   int64       `json:"throttled"` // requests refused by the rate limit
}

// SigningKey is one of the issuer's keys. Private is the JWK with private
// members, stored only in the store.
type SigningKey struct {
	ID        string    `json:"kid"` // RFC 7638 thumbprint
	Alg       string    `json:"alg"`
	Private   []byte    `json:"private"` // JWK JSON with private members
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is when it stopped signing; it stays published until
	// RemoveAt, after every token it signed has expired.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	RemoveAt  time.Time `json:"remove_at,omitzero"`
}

// TTL is the lifetime the grant was given.
func (g *Grant) TTL() time.Duration { return g.ExpiresAt.Sub(g.CreatedAt) }
