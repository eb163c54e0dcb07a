package ssf

import (
	"strconv"
	"time"

	"github.com/writhq/writ/broker"
)

// Event type URIs (CAEP 1.0 §3, SSF 1.0 §8.1.4 and §8.1.5).
const (
	EventSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	EventVerification      = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	EventStreamUpdated     = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// Delivery methods (SSF 1.0 §6.1).
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// SETType is the JOSE typ of every SET (RFC 8417 §2.3).
const SETType = "secevent+jwt"

// MemberEpoch is writ's event member carrying the revocation epoch of an
// agent-wide or global session-revoked event: tokens issued under an
// earlier epoch are revoked.
const MemberEpoch = "https://writ.dev/ssf/epoch"

// Stream statuses (SSF 1.0 §8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// Subject formats used on the feed (RFC 9493 §3, SSF 1.0 §3.4).
const (
	FormatOpaque  = "opaque"
	FormatIssSub  = "iss_sub"
	FormatJWTID   = "jwt_id"
	FormatURI     = "uri"
	FormatComplex = "complex"
)

// Subject is an RFC 9493 subject identifier or an SSF complex subject.
// Only the members of the formats writ uses are named; a receiver ignores
// the rest.
type Subject struct {
	Format string `json:"format"`
	ID     string `json:"id,omitempty"`  // opaque
	Iss    string `json:"iss,omitempty"` // iss_sub, jwt_id
	Sub    string `json:"sub,omitempty"` // iss_sub
	JTI    string `json:"jti,omitempty"` // jwt_id
	URI    string `json:"uri,omitempty"` // uri
	Email  string `json:"email,omitempty"`

	// Members of a complex subject (SSF 1.0 §3.3).
	User        *Subject `json:"user,omitempty"`
	Device      *Subject `json:"device,omitempty"`
	Session     *Subject `json:"session,omitempty"`
	Application *Subject `json:"application,omitempty"`
	Tenant      *Subject `json:"tenant,omitempty"`
	OrgUnit     *Subject `json:"org_unit,omitempty"`
	Group       *Subject `json:"group,omitempty"`
}

// GrantSubject names every token of a grant: the session whose id is the sid.
func GrantSubject(grantID string) *Subject {
	return &Subject{Format: FormatComplex, Session: &Subject{Format: FormatOpaque, ID: grantID}}
}

// TokenSubject names one token by its issuer and jti.
func TokenSubject(issuer, jti string) *Subject {
	return &Subject{Format: FormatJWTID, Iss: issuer, JTI: jti}
}

// AgentSubject names every session of an agent: the user who is the sub of
// its tokens.
func AgentSubject(issuer, agentID string) *Subject {
	return &Subject{Format: FormatComplex, User: &Subject{Format: FormatIssSub, Iss: issuer, Sub: agentID}}
}

// AllSubject names every session the issuer has: its whole tenant.
func AllSubject(issuer string) *Subject {
	return &Subject{Format: FormatComplex, Tenant: &Subject{Format: FormatURI, URI: issuer}}
}

// StreamSubject names a stream, for verification and stream-updated events.
func StreamSubject(streamID string) *Subject {
	return &Subject{Format: FormatOpaque, ID: streamID}
}

// setClaims is the claims set of a SET as writ emits it; the field order is
// the order on the wire.
type setClaims struct {
	Issuer   string         `json:"iss"`
	JTI      string         `json:"jti"`
	IssuedAt int64          `json:"iat"`
	Audience string         `json:"aud"`
	TXN      string         `json:"txn,omitempty"`
	SubID    *Subject       `json:"sub_id"`
	Events   map[string]any `json:"events"`
}

// caepEvent is the body of a session-revoked or token-claims-change event.
type caepEvent struct {
	EventTimestamp   int64             `json:"event_timestamp,omitempty"`
	InitiatingEntity string            `json:"initiating_entity,omitempty"`
	ReasonAdmin      map[string]string `json:"reason_admin,omitempty"`
	Claims           map[string]any    `json:"claims,omitempty"`
	Epoch            uint64            `json:"https://writ.dev/ssf/epoch,omitempty"`
}

type verificationEvent struct {
	State string `json:"state,omitempty"`
}

type streamUpdatedEvent struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// maxReason bounds the operator's reason carried in reason_admin.
const maxReason = 1000

// signalEvent returns the event type, subject and body of a feed signal,
// or ok false for a signal that has no event (a kind this version does not
// know, or one without a subject).
func signalEvent(s *broker.Signal, issuer string) (typ string, sub *Subject, body any, ok bool) {
	ev := caepEvent{InitiatingEntity: initiatingEntity(s.InitiatingEntity)}
	if !s.At.IsZero() {
		ev.EventTimestamp = s.At.Unix()
	}
	if s.Reason != "" {
		ev.ReasonAdmin = map[string]string{"en": clip(s.Reason, maxReason)}
	}
	switch s.Kind {
	case broker.SignalSessionRevoked:
		typ = EventSessionRevoked
	case broker.SignalTokenClaimsChange:
		typ = EventTokenClaimsChange
		if len(s.Claims) == 0 {
			return "", nil, nil, false
		}
		ev.Claims = s.Claims
	default:
		return "", nil, nil, false
	}
	switch {
	case s.GrantID != "":
		sub = GrantSubject(s.GrantID)
	case s.JTI != "":
		sub = TokenSubject(issuer, s.JTI)
	case s.AgentID != "":
		sub, ev.Epoch = AgentSubject(issuer, s.AgentID), s.Epoch
	case s.All:
		sub, ev.Epoch = AllSubject(issuer), s.Epoch
	default:
		return "", nil, nil, false
	}
	if typ == EventTokenClaimsChange && ev.Epoch != 0 {
		return "", nil, nil, false // claims change for a whole agent: not something writ emits
	}
	return typ, sub, ev, true
}

// initiatingEntity keeps only the values CAEP 1.0 §2 allows.
func initiatingEntity(v string) string {
	switch v {
	case "admin", "user", "policy", "system":
		return v
	}
	return ""
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// feedJTI is the jti of the SET carrying feed signal seq on a stream: the
// same on every redelivery, so a receiver can deduplicate, and unique
// because stream ids are random.
func feedJTI(streamID string, seq uint64) string {
	return streamID + "." + strconv.FormatUint(seq, 10)
}

// parseFeedJTI returns the feed sequence a jti of this stream names; ok is
// false for control events and for anything else.
func parseFeedJTI(streamID, jti string) (uint64, bool) {
	if len(jti) <= len(streamID)+1 || jti[:len(streamID)] != streamID || jti[len(streamID)] != '.' {
		return 0, false
	}
	seq, err := strconv.ParseUint(jti[len(streamID)+1:], 10, 64)
	return seq, err == nil && seq > 0
}

// buildClaims returns the claims set of a SET.
func buildClaims(issuer, aud, jti, txn string, now time.Time, typ string, sub *Subject, body any) *setClaims {
	return &setClaims{Issuer: issuer, JTI: jti, IssuedAt: now.Unix(), Audience: aud, TXN: txn, SubID: sub,
		Events: map[string]any{typ: body}}
}
