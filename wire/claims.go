package wire

// AccessClaims are the claims of writ's RFC 9068 access token.
type AccessClaims struct {
	Issuer    string                `json:"iss"`
	Subject   string                `json:"sub"` // the agent
	ClientID  string                `json:"client_id"`
	Audience  string                `json:"aud"` // exactly one resource (RFC 8707)
	IssuedAt  int64                 `json:"iat"`
	NotBefore int64                 `json:"nbf"`
	Expiry    int64                 `json:"exp"`
	JTI       string                `json:"jti"`
	Scope     string                `json:"scope,omitempty"`
	Details   []AuthorizationDetail `json:"authorization_details,omitempty"`
	Cnf       *Confirmation         `json:"cnf,omitempty"`
	SID       string                `json:"sid"` // the grant
	Writ      WritClaims            `json:"writ"`
}

// Confirmation binds a token to a DPoP key (RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt"`
}

// WritClaims trace a token to its consent: which task, which intent, which
// decision, which operator; and the revocation epochs it was issued under,
// so a resource server can apply an agent-wide or global revocation itself.
type WritClaims struct {
	Task         string      `json:"task"`
	IntentSHA256 string      `json:"intent_sha256"`
	Decision     string      `json:"decision"`
	Approver     ApproverRef `json:"approver"`
	Parent       string      `json:"parent,omitempty"` // parent task id
	Epoch        uint64      `json:"epoch"`
	AgentEpoch   uint64      `json:"agent_epoch"`
}

// ApproverRef identifies the operator who approved.
type ApproverRef struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
}
