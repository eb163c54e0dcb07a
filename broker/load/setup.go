// Package load is writ's load scenario: real HTTP clients that drive a
// running writ (normally `writ serve` in another process, over loopback)
// and measure what the in-process benchmarks cannot measure fairly:
// introspection by many concurrent resource-server clients, and the full
// cycle request → approval → DPoP-bound token with every step committed
// by the server. `writ load` runs it; nothing here asserts a timing.
package load

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/policy"
)

// The load configuration's one resource and its scope. The resource
// server is never called: its URI is only the tokens' audience and the
// client_id its introspection calls authenticate as.
const (
	ResourceURI = "https://load.writ.test"
	Scope       = "items:read"
	// OperatorScope is the load resource's second scope, which the load
	// policy leaves to an operator: the cycle-operator phase asks for it
	// and operators approve each request through the operator API.
	OperatorScope = "items:write"
	// Queue is the approver queue the load agents name as login_hint.
	Queue = "oncall"
	// AgentPrefix starts every load agent's id; the policy auto-approves
	// their low-risk requests, and only theirs.
	AgentPrefix = "load-"
)

// The server's per-agent submission limit when nothing overrides it
// (broker.Options' defaults, which `writ serve` keeps): a burst of 10,
// then 0.5 requests per second. The number of load agents is chosen so
// that this brake does not bind during a run.
const (
	serverSubmitBurst = 10
	serverSubmitRate  = 0.5
)

// policyYAML auto-approves the load agents' requests for Scope alone, so
// the full cycle needs no person while every step is still the server's
// own durable work: the policy approves exactly as an operator would.
// A request for OperatorScope matches no rule and waits for an operator.
const policyYAML = `# writ load: the load agents' low-risk requests need no operator.
rules:
  - name: load-agents-read
    when: agent.id.startsWith("` + AgentPrefix + `") && request.scopes.all(s, s == "` + Scope + `")
    effect:
      auto_approve: true
`

// Setup is a generated configuration with every private key: the load
// agents' and the resource server's.
type Setup struct {
	Config *broker.Config
	// Agents are the agents' keys, in the order of Config.Agents.
	Agents []*agent.Key
	// Resource is the resource server's key (client_id ResourceURI).
	Resource *agent.Key
}

// AgentsFor is how many load agents the cycles of a run of d at rate
// full cycles per second need so that the server's per-agent submission
// limit does not refuse one while the server keeps up with rate (a server
// faster than rate uses up the agents' refills sooner). One submission of
// each agent's burst is kept for the tokens the introspection scenario
// mints. d = 0 counts the burst alone: no refusal at any speed.
func AgentsFor(rate float64, d time.Duration) int {
	perAgent := math.Floor(serverSubmitBurst - 1 + serverSubmitRate*d.Seconds())
	cycles := math.Floor(rate * max(d.Seconds(), 1))
	return max(liveTokens, int(math.Ceil(cycles/perAgent)))
}

// NewSetup generates a configuration with n agents, each with a fresh
// key (EdDSA or ES256: alg; empty means EdDSA) and the ceiling Scope at
// ResourceURI.
func NewSetup(n int, alg jose.SignatureAlgorithm) (*Setup, error) {
	if n < 1 {
		return nil, fmt.Errorf("load: at least one agent is needed, got %d", n)
	}
	rk, err := agent.GenerateKey(ResourceURI, alg)
	if err != nil {
		return nil, fmt.Errorf("load: resource key: %w", err)
	}
	s := &Setup{
		Config: &broker.Config{
			Approvers:   []string{Queue},
			Limits:      broker.DefaultLimits,
			RequireDPoP: true,
			Resources: []broker.Resource{{URI: ResourceURI, Name: "Load target", Keys: []jose.JSONWebKey{rk.PublicJWK()},
				Scopes: []broker.Scope{{Name: Scope, Description: "Read items (load scenario)", Risk: broker.RiskLow},
					{Name: OperatorScope, Description: "Write items (load scenario; an operator approves)", Risk: broker.RiskLow}}}},
		},
		Resource: rk,
	}
	for i := range n {
		id := fmt.Sprintf("%s%05d", AgentPrefix, i)
		k, err := agent.GenerateKey(id, alg)
		if err != nil {
			return nil, fmt.Errorf("load: key for %s: %w", id, err)
		}
		s.Agents = append(s.Agents, k)
		s.Config.Agents = append(s.Config.Agents, broker.Agent{ID: id, Name: "Load agent", Owner: "load@writ.test",
			MaxTTL: time.Hour, Keys: []jose.JSONWebKey{k.PublicJWK()},
			Ceiling: []broker.CeilingEntry{{Resource: ResourceURI, Scopes: []string{Scope, OperatorScope}}}})
	}
	return s, nil
}

// Policy compiles the load policy, for a server in the same process.
func Policy() (*policy.Policy, error) {
	return policy.Parse("writ load policy", []byte(policyYAML))
}

// PolicyYAML is the load policy as a file `writ serve --policy` reads.
func PolicyYAML() []byte { return []byte(policyYAML) }

// ConfigYAML writes the configuration as a file `writ serve --config`
// reads: public keys only.
func (s *Setup) ConfigYAML() ([]byte, error) {
	type scope struct {
		Name        string `yaml:"name"`
		Risk        string `yaml:"risk"`
		Description string `yaml:"description,omitempty"`
	}
	type resource struct {
		URI    string           `yaml:"uri"`
		Name   string           `yaml:"name"`
		Scopes []scope          `yaml:"scopes"`
		Keys   []map[string]any `yaml:"keys"`
	}
	type ceiling struct {
		Resource string   `yaml:"resource"`
		Scopes   []string `yaml:"scopes"`
	}
	type agentEntry struct {
		ID      string           `yaml:"id"`
		Name    string           `yaml:"name"`
		Owner   string           `yaml:"owner"`
		MaxTTL  string           `yaml:"max_ttl"`
		Keys    []map[string]any `yaml:"keys"`
		Ceiling []ceiling        `yaml:"ceiling"`
	}
	type limits struct {
		DefaultTTL     string `yaml:"default_ttl"`
		MaxTTL         string `yaml:"max_ttl"`
		ReviewDeadline string `yaml:"review_deadline"`
	}
	type file struct {
		Approvers   []string     `yaml:"approvers"`
		RequireDPoP bool         `yaml:"require_dpop"`
		Limits      limits       `yaml:"limits"`
		Resources   []resource   `yaml:"resources"`
		Agents      []agentEntry `yaml:"agents"`
	}
	c := s.Config
	f := file{Approvers: c.Approvers, RequireDPoP: c.RequireDPoP,
		Limits: limits{c.Limits.DefaultTTL.String(), c.Limits.MaxTTL.String(), c.Limits.ReviewDeadline.String()}}
	for _, r := range c.Resources {
		e := resource{URI: r.URI, Name: r.Name}
		for _, sc := range r.Scopes {
			e.Scopes = append(e.Scopes, scope{Name: sc.Name, Risk: sc.Risk.String(), Description: sc.Description})
		}
		keys, err := jwkMaps(r.Keys)
		if err != nil {
			return nil, err
		}
		e.Keys = keys
		f.Resources = append(f.Resources, e)
	}
	for _, a := range c.Agents {
		keys, err := jwkMaps(a.Keys)
		if err != nil {
			return nil, err
		}
		e := agentEntry{ID: a.ID, Name: a.Name, Owner: a.Owner, MaxTTL: a.MaxTTL.String(), Keys: keys}
		for _, ce := range a.Ceiling {
			e.Ceiling = append(e.Ceiling, ceiling{Resource: ce.Resource, Scopes: ce.Scopes})
		}
		f.Agents = append(f.Agents, e)
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("load: write configuration: %w", err)
	}
	return append([]byte("# Generated by writ load: throw-away keys for one run.\n"), b...), nil
}

// jwkMaps turns public JWKs into the inline mappings the configuration
// file holds.
func jwkMaps(keys []jose.JSONWebKey) ([]map[string]any, error) {
	var out []map[string]any
	for _, k := range keys {
		b, err := k.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("load: encode key %s: %w", k.KeyID, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("load: encode key %s: %w", k.KeyID, err)
		}
		out = append(out, m)
	}
	return out, nil
}
