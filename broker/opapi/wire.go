package opapi

import (
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
)

// Paths of the operator API, relative to the public URL.
const (
	PathToken   = "/v1/token"
	PathEvents  = "/v1/events"
	PathSession = "/v1/session"
)

// Token exchange values (RFC 8693 §2.1, §3).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// IdempotencyHeader names the header that makes a mutating call safe to
// repeat: the same key from the same operator gets the first answer.
const IdempotencyHeader = "Idempotency-Key"

// TokenResponse is the answer of a successful token exchange
// (RFC 8693 §2.2.1), with the operator it names.
type TokenResponse struct {
	AccessToken     string          `json:"access_token"`
	IssuedTokenType string          `json:"issued_token_type"`
	TokenType       string          `json:"token_type"` // always DPoP
	ExpiresIn       int64           `json:"expires_in"`
	Operator        broker.Operator `json:"operator"`
}

// PathLogin is the one unauthenticated GET of the operator API: where
// operators sign in, so `writ login --server URL` needs nothing else.
const PathLogin = "/v1/login"

// LoginInfo is what GET /v1/login says: the provider operators sign in
// at and what makes one an approver.
type LoginInfo struct {
	OIDCIssuer    string          `json:"oidc_issuer"`
	ClientID      string          `json:"client_id"`
	ApproverGroup string          `json:"approver_group"`
	GroupsClaim   string          `json:"groups_claim,omitempty"`
	FreshAuth     broker.Duration `json:"fresh_auth,omitempty"`
}

// SessionInfo is what GET /v1/session says about the caller.
type SessionInfo struct {
	Operator broker.Operator `json:"operator"`
	Expires  time.Time       `json:"expires"`
	// FreshAuth is the window within which the grave actions need a
	// sign-in (0: no such requirement).
	FreshAuth broker.Duration `json:"fresh_auth"`
}

// ErrorBody is every error answer of the operator API: the protocol error
// (RFC 6750 names for authentication, else the broker code), a message for
// people, and the broker error code for programs.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Code        string `json:"code"`
	// Decision names who decided a request first, on a decision that lost
	// the race.
	Decision *broker.Decision `json:"decision,omitempty"`
}

// DecisionResult is the answer to approve, narrow and deny. Grant is nil
// when an approval was recorded and policy needs more approvers; Request
// is the request as it stands after the call.
type DecisionResult struct {
	Grant    *broker.Grant       `json:"grant,omitempty"`
	Decision *broker.Decision    `json:"decision,omitempty"`
	Request  *broker.TaskRequest `json:"request,omitempty"`
}

// RevocationResult is the answer to a revocation. Already is set when the
// grant had been revoked before: the call succeeds, and Revocation
// describes the revocation that ended it.
type RevocationResult struct {
	Revocation *broker.Revocation `json:"revocation"`
	Already    bool               `json:"already,omitempty"`
}

// DecideInput is the body of approve, narrow and deny.
type DecideInput struct {
	Terms  *broker.Terms `json:"terms,omitempty"` // narrow only
	Reason string        `json:"reason,omitempty"`
}

// RevokeInput is the body of the revocations, freeze and unfreeze.
type RevokeInput struct {
	Reason     string `json:"reason,omitempty"`
	Quarantine bool   `json:"quarantine,omitempty"` // agents: quarantine too
	Freeze     *bool  `json:"freeze,omitempty"`     // revoke-all: freeze too (default true)
}

// Agent is an agent as the operator API shows it: its configuration
// (public keys only) and its state.
type Agent struct {
	ID      string                `json:"id"`
	Name    string                `json:"name,omitempty"`
	Owner   string                `json:"owner,omitempty"`
	Ceiling []broker.CeilingEntry `json:"ceiling,omitempty"`
	MaxTTL  broker.Duration       `json:"max_ttl,omitempty"`
	// Keys are the agent's public keys (its client assertions' keys).
	Keys     []jose.JSONWebKey        `json:"keys,omitempty"`
	Workload *broker.WorkloadIdentity `json:"workload,omitempty"`
	State    broker.AgentState        `json:"state"`
}

// Config is the broker configuration as the console needs it: agents
// (with their public keys), resources (without theirs) and limits.
type Config struct {
	Agents      []Agent            `json:"agents"`
	Resources   []Resource         `json:"resources"`
	Limits      Limits             `json:"limits"`
	RequireDPoP bool               `json:"require_dpop"`
	Approvers   []string           `json:"approvers,omitempty"`
	PolicyFile  string             `json:"policy_file,omitempty"`
	Issuer      string             `json:"issuer"`
	FreshAuth   broker.Duration    `json:"fresh_auth,omitempty"`
	State       broker.IssuerState `json:"issuer_state"`
}

// Resource is a resource server's catalogue entry, without its keys.
type Resource struct {
	URI         string         `json:"uri"`
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	Scopes      []broker.Scope `json:"scopes,omitempty"`
}

// Limits are broker.Limits on the wire.
type Limits struct {
	DefaultTTL     broker.Duration `json:"default_ttl"`
	MaxTTL         broker.Duration `json:"max_ttl"`
	ReviewDeadline broker.Duration `json:"review_deadline"`
}

// PolicyStatus says which policy is in force.
type PolicyStatus struct {
	File  string `json:"file,omitempty"` // "" when there is no policy file
	Rules int    `json:"rules"`
	// Error is why the file last failed to reload; the last good policy
	// stays in force meanwhile.
	Error string `json:"error,omitempty"`
}

// AuditVerify is the answer of GET /v1/audit/verify.
type AuditVerify struct {
	Entries uint64 `json:"entries"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// IssuerStatus is the answer of GET /v1/issuer: LIVE or FROZEN (the
// issuer state's fields, as before) and whether the store can write.
type IssuerStatus struct {
	broker.IssuerState
	// Store is nil from a server older than the store's health.
	Store *broker.StoreHealth `json:"store,omitempty"`
}

// Event is a broker event on the wire: the data of one SSE event.
type Event struct {
	Kind       broker.EventKind    `json:"kind"`
	At         time.Time           `json:"at"`
	Request    *broker.TaskRequest `json:"request,omitempty"`
	Decision   *broker.Decision    `json:"decision,omitempty"`
	Grant      *broker.Grant       `json:"grant,omitempty"`
	Revocation *broker.Revocation  `json:"revocation,omitempty"`
	Issuer     *broker.IssuerState `json:"issuer,omitempty"`
	Agent      *broker.AgentState  `json:"agent,omitempty"`
	Audit      *broker.AuditEntry  `json:"audit,omitempty"`
	Store      *broker.StoreHealth `json:"store,omitempty"`
}

// WireEvent converts a broker event for the wire.
func WireEvent(e broker.Event) Event {
	return Event{Kind: e.Kind, At: e.At, Request: e.Request, Decision: e.Decision, Grant: e.Grant,
		Revocation: e.Revocation, Issuer: e.Issuer, Agent: e.Agent, Audit: e.Audit, Store: e.Store}
}

// BrokerEvent converts a wire event back.
func (e Event) BrokerEvent() broker.Event {
	return broker.Event{Kind: e.Kind, At: e.At, Request: e.Request, Decision: e.Decision, Grant: e.Grant,
		Revocation: e.Revocation, Issuer: e.Issuer, Agent: e.Agent, Audit: e.Audit, Store: e.Store}
}

// BrokerConfig converts the wire configuration back to a broker.Config
// for the console (agents and resources without keys).
func (c *Config) BrokerConfig() *broker.Config {
	out := &broker.Config{
		Limits:      broker.Limits{DefaultTTL: time.Duration(c.Limits.DefaultTTL), MaxTTL: time.Duration(c.Limits.MaxTTL), ReviewDeadline: time.Duration(c.Limits.ReviewDeadline)},
		RequireDPoP: c.RequireDPoP, Approvers: c.Approvers, PolicyFile: c.PolicyFile,
	}
	for _, a := range c.Agents {
		ag := broker.Agent{ID: a.ID, Name: a.Name, Owner: a.Owner, Ceiling: a.Ceiling, MaxTTL: time.Duration(a.MaxTTL),
			Keys: a.Keys, Workload: a.Workload}
		out.Agents = append(out.Agents, ag)
	}
	for _, r := range c.Resources {
		out.Resources = append(out.Resources, broker.Resource{URI: r.URI, Name: r.Name, Description: r.Description, Scopes: r.Scopes})
	}
	return out
}
