package broker

import (
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Config is what the operator declares: who may ask, for what, and the
// limits every grant lives within. It is loaded by broker/config.
type Config struct {
	Agents    []Agent
	Resources []Resource
	Limits    Limits
	// RequireDPoP refuses to mint bearer tokens: every token request must
	// carry a DPoP proof.
	RequireDPoP bool
	// Approvers are the login_hint values an agent may name: the people or
	// queues that review requests. Empty means the single queue "oncall".
	Approvers []string
	// PolicyFile is the policy file the configuration names (broker/policy
	// reads it; a relative path is resolved against the configuration
	// file's directory); empty for none.
	PolicyFile string
	// PushAllow lists the private address ranges (CIDR), addresses and
	// host names that revocation-feed push delivery may reach; every
	// other non-public address is refused (issue 10). Read by broker/ssf.
	PushAllow []string
	// FeedStreamsPerReceiver bounds the revocation-feed streams one
	// resource server may hold (one per replica); zero leaves broker/ssf's
	// default. cmd passes it to broker/ssf as MaxStreamsPerReceiver.
	FeedStreamsPerReceiver int
}

// Limits bound every request and grant.
type Limits struct {
	DefaultTTL     time.Duration // TTL when the agent asks for none
	MaxTTL         time.Duration // no grant lives longer, whatever an agent's ceiling says
	ReviewDeadline time.Duration // a pending request expires after this long
	// SubmitRate (requests per second) and SubmitBurst bound how fast one
	// agent may submit task requests; zero leaves the Service's default.
	SubmitRate  float64
	SubmitBurst int
}

// DefaultLimits are the limits used when the configuration says nothing.
var DefaultLimits = Limits{DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: 10 * time.Minute}

// Agent is a registered workload that may ask for tasks.
type Agent struct {
	ID    string
	Name  string
	Owner string
	// Keys are the public keys the agent signs its client assertions with.
	Keys []jose.JSONWebKey
	// Workload is the federated identity that may stand in for Keys.
	Workload *WorkloadIdentity
	// Ceiling is everything the agent may ever ask for, per resource.
	Ceiling []CeilingEntry
	// MaxTTL caps this agent's grants below Limits.MaxTTL; zero means no extra cap.
	MaxTTL time.Duration
	// SubmitRate and SubmitBurst override Limits' for this agent; zero
	// means the configuration's.
	SubmitRate  float64
	SubmitBurst int
}

// WorkloadIdentity maps a JWT from a trusted issuer (a SPIFFE JWT-SVID, a
// cloud workload token) to an agent by its exact subject.
type WorkloadIdentity struct {
	Issuer   string // discovered with OIDC discovery and verified with go-oidc
	Subject  string // exact match, e.g. spiffe://example.org/agent/release
	Audience string // the audience the token must carry; default the writ issuer
}

// CeilingEntry is the widest an agent may ask for at one resource.
type CeilingEntry struct {
	Resource string   `json:"resource"`
	Scopes   []string `json:"scopes"`
}

// Resource is an audience: a resource server and its catalogue of scopes.
type Resource struct {
	URI         string // the RFC 8707 resource indicator and the token's aud
	Name        string
	Description string
	Scopes      []Scope
	// Keys and Workload are how the resource server itself authenticates
	// to writ (client_id = URI) to introspect tokens and follow the
	// revocation feed. A resource with neither can still verify tokens
	// locally but cannot subscribe to revocations.
	Keys     []jose.JSONWebKey
	Workload *WorkloadIdentity
}

// Scope is one entry in a resource's catalogue.
type Scope struct {
	Name        string
	Description string
	Risk        Risk
}

// Agent returns the agent with the given id.
func (c *Config) Agent(id string) (*Agent, bool) {
	for i := range c.Agents {
		if c.Agents[i].ID == id {
			return &c.Agents[i], true
		}
	}
	return nil, false
}

// Resource returns the resource with the given URI.
func (c *Config) Resource(uri string) (*Resource, bool) {
	for i := range c.Resources {
		if c.Resources[i].URI == uri {
			return &c.Resources[i], true
		}
	}
	return nil, false
}

// Scope returns the catalogue entry of a scope at this resource.
func (r *Resource) Scope(name string) (Scope, bool) {
	for _, s := range r.Scopes {
		if s.Name == name {
			return s, true
		}
	}
	return Scope{}, false
}

// CeilingFor returns the scopes the agent may ever ask for at a resource.
func (a *Agent) CeilingFor(resource string) ([]string, bool) {
	for _, c := range a.Ceiling {
		if c.Resource == resource {
			return c.Scopes, true
		}
	}
	return nil, false
}

// ApproverQueues returns the login_hint values requests may name.
func (c *Config) ApproverQueues() []string {
	if len(c.Approvers) == 0 {
		return []string{"oncall"}
	}
	return c.Approvers
}
