package ssf

import (
	"strconv"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire/ssfwire"
)

// setClaims is the claims set of a SET as writ emits it; the field order is
// the order on the wire.
type setClaims struct {
	Issuer   string           `json:"iss"`
	JTI      string           `json:"jti"`
	IssuedAt int64            `json:"iat"`
	Audience string           `json:"aud"`
	TXN      string           `json:"txn,omitempty"`
	SubID    *ssfwire.Subject `json:"sub_id"`
	Events   map[string]any   `json:"events"`
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
func signalEvent(s *broker.Signal, issuer string) (typ string, sub *ssfwire.Subject, body any, ok bool) {
	ev := caepEvent{InitiatingEntity: initiatingEntity(s.InitiatingEntity)}
	if !s.At.IsZero() {
		ev.EventTimestamp = s.At.Unix()
	}
	if s.Reason != "" {
		ev.ReasonAdmin = map[string]string{"en": clip(s.Reason, maxReason)}
	}
	switch s.Kind {
	case broker.SignalSessionRevoked:
		typ = ssfwire.EventSessionRevoked
	case broker.SignalTokenClaimsChange:
		typ = ssfwire.EventTokenClaimsChange
		if len(s.Claims) == 0 {
			return "", nil, nil, false
		}
		ev.Claims = s.Claims
	default:
		return "", nil, nil, false
	}
	switch {
	case s.GrantID != "":
		sub = ssfwire.GrantSubject(s.GrantID)
	case s.JTI != "":
		sub = ssfwire.TokenSubject(issuer, s.JTI)
	case s.AgentID != "":
		sub, ev.Epoch = ssfwire.AgentSubject(issuer, s.AgentID), s.Epoch
	case s.All:
		sub, ev.Epoch = ssfwire.AllSubject(issuer), s.Epoch
	default:
		return "", nil, nil, false
	}
	if typ == ssfwire.EventTokenClaimsChange && ev.Epoch != 0 {
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

// feedJTI is the jti of the SET carrying feed signal seq to the audience
// tagged tag (audienceTag): the same on every stream of that receiver and
// on every redelivery, so a receiver can deduplicate, and unique because
// each SET is one signal for one audience.
func feedJTI(tag string, seq uint64) string {
	return tag + "." + strconv.FormatUint(seq, 10)
}

// parseFeedJTI returns the feed sequence a jti of this stream's feed SETs
// names: the audience's (feedJTI), or the stream's own, which SETs had
// before they were shared between a receiver's streams and which a
// receiver may still acknowledge. ok is false for control events and for
// anything else.
func (s *stream) parseFeedJTI(jti string) (uint64, bool) {
	if seq, ok := jtiSeq(s.tag, jti); ok {
		return seq, true
	}
	return jtiSeq(s.id, jti)
}

func jtiSeq(prefix, jti string) (uint64, bool) {
	if len(jti) <= len(prefix)+1 || jti[:len(prefix)] != prefix || jti[len(prefix)] != '.' {
		return 0, false
	}
	seq, err := strconv.ParseUint(jti[len(prefix)+1:], 10, 64)
	return seq, err == nil && seq > 0
}

// buildClaims returns the claims set of a SET.
func buildClaims(issuer, aud, jti, txn string, now time.Time, typ string, sub *ssfwire.Subject, body any) *setClaims {
	return &setClaims{Issuer: issuer, JTI: jti, IssuedAt: now.Unix(), Audience: aud, TXN: txn, SubID: sub,
		Events: map[string]any{typ: body}}
}
