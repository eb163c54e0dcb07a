package broker

import (
	"time"
)

// EndKind is the typed cause of a grant's end. Prose is rendered from it
// at the edges (Describe); nothing branches on message text.
type EndKind string

const (
	EndCompleted     EndKind = "completed"      // the agent revoked its own token: task done
	EndExpired       EndKind = "expired"        // it reached its not-after
	EndRevokedGrant  EndKind = "revoked"        // an operator revoked this grant (or its tree)
	EndRevokedAgent  EndKind = "revoked_agent"  // everything its agent held was revoked (agent epoch)
	EndRevokedAll    EndKind = "revoked_all"    // everything was revoked (issuer epoch)
	EndRevokedParent EndKind = "revoked_parent" // its parent grant ended, and a follow-on lives inside its parent
)

// EndCause says how a grant ended: what, who, when and why.
type EndCause struct {
	Kind   EndKind   `json:"kind"`
	Actor  Operator  `json:"actor,omitzero"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Parent is the parent grant, for EndRevokedParent.
	Parent string `json:"parent,omitempty"`
}

// Revoked reports whether the cause is a revocation of any kind.
func (c EndCause) Revoked() bool {
	switch c.Kind {
	case EndRevokedGrant, EndRevokedAgent, EndRevokedAll, EndRevokedParent:
		return true
	}
	return false
}

// State is the grant state the cause ends in.
func (c EndCause) State() GrantState {
	switch c.Kind {
	case EndCompleted:
		return GrantCompleted
	case EndExpired:
		return GrantExpired
	}
	return GrantRevoked
}

// Describe writes the cause as a person reads it, without the time:
// "revoked with everything its agent held", "completed by the agent".
func (c EndCause) Describe() string {
	by := ""
	if c.Actor.Subject != "" && c.Actor != System {
		by = " by " + c.Actor.Display()
	}
	why := ""
	if c.Reason != "" {
		why = ": " + c.Reason
	}
	switch c.Kind {
	case EndCompleted:
		return "completed by the agent"
	case EndExpired:
		return "expired"
	case EndRevokedAgent:
		return "revoked with everything its agent held" + by + why
	case EndRevokedAll:
		return "revoked with everything (revoke-all)" + by + why
	case EndRevokedParent:
		if c.Parent != "" {
			return "ended with its parent grant " + c.Parent
		}
		return "ended with its parent grant"
	}
	return "revoked" + by + why
}

// GrantStatus is a grant's state as of a moment, with the cause of its end.
type GrantStatus struct {
	State GrantState `json:"state"`
	Cause *EndCause  `json:"cause,omitempty"` // nil while active
}

// Live reports whether the grant may be used.
func (s GrantStatus) Live() bool { return s.State == GrantActive }

// EpochMark records one move of a revocation epoch: who moved it, when
// and why, so a grant ended by it can say so.
type EpochMark struct {
	Epoch  uint64    `json:"epoch"`
	At     time.Time `json:"at"`
	By     Operator  `json:"by"`
	Reason string    `json:"reason,omitempty"`
}

// maxEpochMarks bounds the epoch history kept with the issuer and each
// agent; older marks only matter to grants long expired.
const maxEpochMarks = 64

// markEpoch appends a mark, keeping the newest maxEpochMarks.
func markEpoch(marks []EpochMark, m EpochMark) []EpochMark {
	marks = append(marks, m)
	if n := len(marks); n > maxEpochMarks {
		marks = append(marks[:0:0], marks[n-maxEpochMarks:]...)
	}
	return marks
}

// StatusOf is the one rule for whether a grant is live: a pure function of
// the grant, the issuer's and its agent's revocation epochs, and the
// clock. A grant whose record is still active may be dead by an epoch
// (revoke-agent and revoke-all are O(1) and touch no grant) or by its
// expiry; the earliest of these is its cause. A grant whose record has
// ended keeps the cause recorded with it forever.
func StatusOf(g *Grant, issuer IssuerState, agent AgentState, now time.Time) GrantStatus {
	if g.State != GrantActive {
		c := g.endCause()
		return GrantStatus{State: g.State, Cause: &c}
	}
	var cause *EndCause
	earliest := func(c EndCause) {
		if cause == nil || c.At.Before(cause.At) {
			cause = &c
		}
	}
	if g.Epoch < issuer.Epoch {
		earliest(epochCause(EndRevokedAll, issuer.Epochs, g.Epoch, issuer.EpochAt))
	}
	if g.AgentEpoch < agent.Epoch {
		earliest(epochCause(EndRevokedAgent, agent.Epochs, g.AgentEpoch, agent.EpochAt))
	}
	if !now.Before(g.ExpiresAt) {
		earliest(EndCause{Kind: EndExpired, Actor: System, At: g.ExpiresAt})
	}
	if cause == nil {
		return GrantStatus{State: GrantActive}
	}
	return GrantStatus{State: cause.State(), Cause: cause}
}

// epochCause is the cause for a grant made under epoch `under`: the first
// recorded move past it, or, for a store older than epoch marks, the
// latest move.
func epochCause(kind EndKind, marks []EpochMark, under uint64, latest time.Time) EndCause {
	for _, m := range marks {
		if m.Epoch > under {
			return EndCause{Kind: kind, Actor: m.By, At: m.At, Reason: m.Reason}
		}
	}
	return EndCause{Kind: kind, At: latest}
}

// endCause is the cause recorded with an ended grant; records written
// before causes were typed are read from their state.
func (g *Grant) endCause() EndCause {
	c := EndCause{Kind: g.EndKind, At: g.EndedAt, Reason: g.EndReason, Parent: g.EndParent}
	if g.EndedBy != nil {
		c.Actor = *g.EndedBy
	}
	if c.Kind == "" {
		switch g.State {
		case GrantCompleted:
			c.Kind = EndCompleted
		case GrantExpired:
			c.Kind = EndExpired
		default:
			c.Kind = EndRevokedGrant
		}
	}
	return c
}

// StatusOf returns the grant's status as of now, with the service's epochs.
func (s *Service) StatusOf(g *Grant) GrantStatus {
	return StatusOf(g, s.IssuerState(), s.agentState(g.AgentID), s.now())
}

// Why says in a phrase why the grant can no longer be used ("expired",
// "was revoked with everything its agent held"), or "" while it is live.
func (s GrantStatus) Why() string {
	switch {
	case s.Cause == nil:
		return ""
	case s.Cause.Kind == EndExpired, s.Cause.Kind == EndRevokedParent:
		return s.Cause.Describe()
	}
	return "was " + s.Cause.Describe()
}

// statusIn is StatusOf with the epochs as a transaction sees them.
func statusIn(tx TxReader, g *Grant, now time.Time) (GrantStatus, error) {
	issuer, err := tx.Issuer()
	if err != nil {
		return GrantStatus{}, err
	}
	agent, err := tx.AgentState(g.AgentID)
	if err != nil {
		return GrantStatus{}, err
	}
	return StatusOf(g, issuer, agent, now), nil
}
