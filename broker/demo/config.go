// Package demo is what `writ demo` runs besides the console: a realistic
// configuration, a fleet of simulated agents that are real HTTP clients of
// writ's agent API (their own keys, DPoP-bound tokens), and a resource
// server protected by the guard that those agents call.
package demo

import (
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
)

// Resource names of the demo resource server; each is a path on it.
const (
	ResGit       = "git"
	ResBilling   = "billing"
	ResWarehouse = "warehouse"
	ResVault     = "vault"
	// ResDeploy is the deploy MCP server (streamable HTTP at its URI),
	// whose tools are the scopes tool:<name>.
	ResDeploy = "deploy"
)

// catalogue is the demo's resources and their scopes.
var catalogue = []struct {
	name, title, desc string
	scopes            []broker.Scope
}{
	{ResGit, "Source hosting", "Repositories, pull requests and CI workflows", []broker.Scope{
		{Name: "contents:read", Description: "Read repository contents and history", Risk: broker.RiskLow},
		{Name: "contents:write", Description: "Push commits and create branches", Risk: broker.RiskHigh},
		{Name: "pulls:write", Description: "Open and comment on pull requests", Risk: broker.RiskMedium},
		{Name: "workflows:write", Description: "Change CI workflows (runs code with CI secrets)", Risk: broker.RiskCritical},
		{Name: "secrets:read", Description: "Read repository and CI secrets", Risk: broker.RiskCritical},
	}},
	{ResBilling, "Billing", "Customers, invoices and refunds", []broker.Scope{
		{Name: "customers:read", Description: "Read customer records (personal data)", Risk: broker.RiskMedium},
		{Name: "refunds:create", Description: "Issue refunds to a customer's card", Risk: broker.RiskHigh},
	}},
	{ResWarehouse, "Data warehouse", "Analytics tables", []broker.Scope{
		{Name: "tables:read", Description: "Query tables (may include personal data)", Risk: broker.RiskMedium},
		{Name: "tables:export", Description: "Export query results outside the warehouse", Risk: broker.RiskHigh},
	}},
	{ResVault, "Secrets vault", "Service credentials", []broker.Scope{
		{Name: "secrets:rotate", Description: "Rotate a service credential", Risk: broker.RiskCritical},
	}},
	{ResDeploy, "Deploy (MCP)", "MCP server of the deploy pipeline; each tool is a scope", []broker.Scope{
		{Name: "tool:status", Description: "Read a service's rollout status", Risk: broker.RiskLow},
		{Name: "tool:deploy", Description: "Roll out a new version to production", Risk: broker.RiskHigh},
		{Name: "tool:rollback", Description: "Roll production back to an earlier version", Risk: broker.RiskHigh},
	}},
}

// agentSpec describes one simulated agent.
type agentSpec struct {
	id, name, owner string
	ceiling         map[string][]string // resource name → scopes
	maxTTL          time.Duration
}

var agentSpecs = []agentSpec{
	{"release-bot", "Release agent", "platform-team@acme.example", map[string][]string{ResGit: {"contents:read", "contents:write", "pulls:write", "workflows:write"}}, time.Hour},
	{"docs-bot", "Docs assistant", "dev-productivity@acme.example", map[string][]string{ResGit: {"contents:read", "pulls:write"}}, 30 * time.Minute},
	{"support-agent", "Support assistant", "support-eng@acme.example", map[string][]string{ResBilling: {"customers:read", "refunds:create"}}, 30 * time.Minute},
	{"analyst", "Analytics agent", "data-team@acme.example", map[string][]string{ResWarehouse: {"tables:read", "tables:export"}}, time.Hour},
	{"rotator", "Credential rotator", "security@acme.example", map[string][]string{ResVault: {"secrets:rotate"}}, 15 * time.Minute},
	// deploy-bot talks to the deploy MCP server with the MCP Go SDK; it is
	// granted the status tool and steps up for deploy when it gets there.
	{"deploy-bot", "Deploy agent", "platform-team@acme.example", map[string][]string{ResDeploy: {"tool:status", "tool:deploy", "tool:rollback"}}, 30 * time.Minute},
	// triage-bot misbehaves: it asks for far more than its intent needs,
	// and now and then floods the queue with near-identical requests.
	{"triage-bot", "Issue triage", "dev-productivity@acme.example", map[string][]string{ResGit: {"contents:read", "contents:write", "secrets:read"}}, 15 * time.Minute},
}

// Setup is a demo configuration with the agents' private keys.
type Setup struct {
	Config *broker.Config
	Keys   map[string]*agent.Key // by agent id
	// ResourceKeys are the resource server's own keys, by resource name:
	// each guard authenticates to writ as client_id = its resource URI.
	ResourceKeys map[string]*agent.Key
	// Resources maps a resource name (ResGit, ...) to its URI.
	Resources map[string]string
	// ServerURL is the resource server's base URL; resource URIs are paths on it.
	ServerURL string
}

// NewSetup builds the demo configuration for a resource server at rsURL
// (e.g. http://127.0.0.1:41234), with a fresh key for every agent.
func NewSetup(rsURL string) (*Setup, error) {
	s := &Setup{
		Config: &broker.Config{
			Limits:      broker.Limits{DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: 5 * time.Minute},
			RequireDPoP: true,
			Approvers:   []string{"oncall"},
		},
		Keys:         map[string]*agent.Key{},
		ResourceKeys: map[string]*agent.Key{},
		Resources:    map[string]string{},
		ServerURL:    rsURL,
	}
	for _, r := range catalogue {
		uri := rsURL + "/" + r.name
		k, err := agent.GenerateKey(uri, jose.EdDSA)
		if err != nil {
			return nil, fmt.Errorf("demo key for resource %s: %w", r.name, err)
		}
		s.Resources[r.name] = uri
		s.ResourceKeys[r.name] = k
		s.Config.Resources = append(s.Config.Resources, broker.Resource{URI: uri, Name: r.title, Description: r.desc,
			Scopes: r.scopes, Keys: []jose.JSONWebKey{k.PublicJWK()}})
	}
	for _, a := range agentSpecs {
		k, err := agent.GenerateKey(a.id, jose.EdDSA)
		if err != nil {
			return nil, fmt.Errorf("demo key for %s: %w", a.id, err)
		}
		s.Keys[a.id] = k
		ag := broker.Agent{ID: a.id, Name: a.name, Owner: a.owner, MaxTTL: a.maxTTL, Keys: []jose.JSONWebKey{k.PublicJWK()}}
		for res, scopes := range a.ceiling {
			ag.Ceiling = append(ag.Ceiling, broker.CeilingEntry{Resource: s.Resources[res], Scopes: scopes})
		}
		s.Config.Agents = append(s.Config.Agents, ag)
	}
	return s, nil
}
