package broker

import "time"

// EventKind names a live event.
type EventKind string

const (
	EventRequestSubmitted EventKind = "request.submitted"
	EventRequestDecided   EventKind = "request.decided"
	// EventRequestUpdated is a pending request that changed without being
	// decided: one approval recorded where policy requires several, or an
	// auto-approval that did not take effect. The request is still pending.
	EventRequestUpdated EventKind = "request.updated"
	// EventRequestRefused is a submission policy refused; the request (in
	// the event) was never stored.
	EventRequestRefused   EventKind = "request.refused"
	EventRequestExpired   EventKind = "request.expired"
	EventRequestCancelled EventKind = "request.cancelled"
	EventRequestThrottled EventKind = "request.throttled"
	EventTokenIssued      EventKind = "token.issued"
	EventGrantUsed        EventKind = "grant.used"
	EventGrantEnded       EventKind = "grant.ended" // completed, expired or revoked: see Grant.State
	EventAgentRevoked     EventKind = "agent.revoked"
	EventAgentReleased    EventKind = "agent.released"
	EventAllRevoked       EventKind = "all.revoked"
	EventIssuerChanged    EventKind = "issuer.changed" // frozen or unfrozen
	EventKeysRotated      EventKind = "keys.rotated"
	// EventStoreHealth is the store becoming unable to write, or able
	// again (Event.Store); it describes no commit.
	EventStoreHealth EventKind = "store.health"
	// EventResync tells a subscriber that it missed events and should reload.
	EventResync EventKind = "resync"
)

// Event is published to subscribers after the change it describes has
// been committed. Only the fields relevant to Kind are set; they are
// copies, safe to keep.
type Event struct {
	Kind       EventKind
	At         time.Time
	Request    *TaskRequest
	Decision   *Decision
	Grant      *Grant
	Revocation *Revocation
	Issuer     *IssuerState
	Agent      *AgentState
	Audit      *AuditEntry
	Store      *StoreHealth
}

// SignalKind is the CAEP event a signal becomes on the revocation feed.
type SignalKind string

const (
	SignalSessionRevoked    SignalKind = "session-revoked"
	SignalTokenClaimsChange SignalKind = "token-claims-change"
)

// Signal is a revocation-feed entry, written in the same transaction as the
// change that causes it, so the feed never loses one. The SSF transmitter
// turns each into a signed Security Event Token.
type Signal struct {
	Seq  uint64     `json:"seq"`
	Kind SignalKind `json:"kind"`
	At   time.Time  `json:"at"`
	// Exactly one subject is set.
	GrantID string `json:"grant_id,omitempty"` // every token of the grant (its sid)
	JTI     string `json:"jti,omitempty"`      // one token
	AgentID string `json:"agent_id,omitempty"` // every token the agent holds
	All     bool   `json:"all,omitempty"`      // every token (the epoch)
	// Epoch is the new epoch for agent and all: tokens issued under an
	// earlier one are dead.
	Epoch            uint64 `json:"epoch,omitempty"`
	Audience         string `json:"aud,omitempty"`     // the resource of the grant, when there is one
	InitiatingEntity string `json:"initiating_entity"` // admin, user, policy or system
	Reason           string `json:"reason,omitempty"`
	// Claims are the new claims for token-claims-change.
	Claims map[string]any `json:"claims,omitempty"`
}
