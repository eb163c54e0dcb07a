package ssfwire

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
