// Package config loads writ's YAML configuration file into a
// broker.Config, with errors that name the file, the line and the field.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf"
)

// Error is a configuration error at a place in a file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// maxFeedStreams bounds feed_streams_per_receiver: each stream costs writ
// memory (up to a few hundred KiB for a receiver that acknowledges out of
// order), so the bound keeps one resource server's worst case in the GiB.
const maxFeedStreams = 16384

// file mirrors the YAML layout.
type file struct {
	RequireDPoP bool       `yaml:"require_dpop"`
	Approvers   []string   `yaml:"approvers"`
	Limits      limits     `yaml:"limits"`
	Resources   []resource `yaml:"resources"`
	Agents      []agent    `yaml:"agents"`
	Console     yaml.Node  `yaml:"console"` // read by the console, not the broker
	Policy      string     `yaml:"policy"`
	PushAllow   []string   `yaml:"push_allow"`
	// FeedStreams bounds one resource server's feed streams.
	FeedStreams int `yaml:"feed_streams_per_receiver"`
}

type limits struct {
	DefaultTTL     duration `yaml:"default_ttl"`
	MaxTTL         duration `yaml:"max_ttl"`
	ReviewDeadline duration `yaml:"review_deadline"`
	SubmitRate     float64  `yaml:"submit_rate"`  // task requests per second, per agent
	SubmitBurst    int      `yaml:"submit_burst"` // task requests at once, per agent
}

type resource struct {
	URI         string      `yaml:"uri"`
	Name        string      `yaml:"name"`
	Description string      `yaml:"description"`
	Scopes      []scope     `yaml:"scopes"`
	Keys        []yaml.Node `yaml:"keys"`
	Workload    *workload   `yaml:"workload"`
	Line        int         `yaml:"-"`
}

type scope struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Risk        string `yaml:"risk"`
	Line        int    `yaml:"-"`
}

type agent struct {
	ID       string      `yaml:"id"`
	Name     string      `yaml:"name"`
	Owner    string      `yaml:"owner"`
	Keys     []yaml.Node `yaml:"keys"`
	Workload *workload   `yaml:"workload"`
	Ceiling  []ceiling   `yaml:"ceiling"`
	MaxTTL   duration    `yaml:"max_ttl"`
	// SubmitRate and SubmitBurst override limits' for this agent.
	SubmitRate  float64 `yaml:"submit_rate"`
	SubmitBurst int     `yaml:"submit_burst"`
	Line        int     `yaml:"-"`
}

type workload struct {
	Issuer   string `yaml:"issuer"`
	Subject  string `yaml:"subject"`
	Audience string `yaml:"audience"`
}

type ceiling struct {
	Resource string   `yaml:"resource"`
	Scopes   []string `yaml:"scopes"`
	Line     int      `yaml:"-"`
}

// duration is a time.Duration written as "15m" or "1h30m".
type duration struct {
	time.Duration
	Line int
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (write e.g. 15m or 1h)", n.Line, n.Value)}}
	}
	d.Duration, d.Line = v, n.Line
	return nil
}

// Remember where each list element starts, for error messages.
func (r *resource) UnmarshalYAML(n *yaml.Node) error {
	type plain resource
	if err := decodeStrict(n, (*plain)(r)); err != nil {
		return err
	}
	r.Line = n.Line
	return nil
}

func (s *scope) UnmarshalYAML(n *yaml.Node) error {
	type plain scope
	if err := decodeStrict(n, (*plain)(s)); err != nil {
		return err
	}
	s.Line = n.Line
	return nil
}

func (a *agent) UnmarshalYAML(n *yaml.Node) error {
	type plain agent
	if err := decodeStrict(n, (*plain)(a)); err != nil {
		return err
	}
	a.Line = n.Line
	return nil
}

func (c *ceiling) UnmarshalYAML(n *yaml.Node) error {
	type plain ceiling
	if err := decodeStrict(n, (*plain)(c)); err != nil {
		return err
	}
	c.Line = n.Line
	return nil
}

// decodeStrict decodes a node refusing unknown fields, which yaml.v3 only
// does for the top-level decoder otherwise.
func decodeStrict(n *yaml.Node, v any) error {
	if n.Kind == yaml.MappingNode {
		if err := checkFields(n, v); err != nil {
			return err
		}
	}
	return n.Decode(v)
}

// Load reads and validates the configuration file at path.
func Load(path string) (*broker.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, b)
}

// Parse validates a configuration read from name.
func Parse(name string, data []byte) (*broker.Config, error) {
	if err := checkFile(name, data, reflect.TypeOf(file{}), ""); err != nil {
		return nil, err
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is an empty configuration: no agents yet.
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	return f.build(name)
}

// checkFile refuses the first unknown field in data (when data is YAML at
// all; the decoder reports syntax errors), naming its path and the nearest
// valid field.
func checkFile(name string, data []byte, t reflect.Type, path string) error {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	if err := checkTree(&root, t, path, 0); err != nil {
		if fa, ok := err.(*fieldAt); ok {
			return &Error{File: name, Line: fa.line, Field: fa.field, Msg: fa.msg}
		}
		return err
	}
	return nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into an *Error.
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	var fa *fieldAt
	if errors.As(err, &fa) {
		return &Error{File: name, Line: fa.line, Field: fa.field, Msg: fa.msg}
	}
	msg = plainTypeError(msg)
	line := 0
	if _, rest, ok := strings.Cut(msg, "line "); ok {
		fmt.Sscanf(rest, "%d", &line)
		if _, after, ok := strings.Cut(rest, ": "); ok {
			msg = after
		}
	}
	return &Error{File: name, Line: line, Msg: msg}
}

func (f *file) build(name string) (*broker.Config, error) {
	fail := func(line int, field, format string, args ...any) error {
		return &Error{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	cfg := &broker.Config{RequireDPoP: f.RequireDPoP, Approvers: f.Approvers, Limits: broker.DefaultLimits}
	if f.Policy != "" {
		// A policy file named relative to the configuration lives beside it.
		cfg.PolicyFile = f.Policy
		if !filepath.IsAbs(f.Policy) {
			cfg.PolicyFile = filepath.Join(filepath.Dir(name), f.Policy)
		}
	}
	if len(f.PushAllow) > 0 {
		if _, err := ssf.ParseEgress(f.PushAllow); err != nil {
			return nil, fail(0, "push_allow", "%v", err)
		}
		cfg.PushAllow = slices.Clone(f.PushAllow)
	}
	if f.FeedStreams < 0 || f.FeedStreams > maxFeedStreams {
		return nil, fail(0, "feed_streams_per_receiver", "must be between 1 and %d (0 or absent: the default)", maxFeedStreams)
	}
	cfg.FeedStreamsPerReceiver = f.FeedStreams
	for _, l := range []struct {
		d   duration
		dst *time.Duration
	}{{f.Limits.DefaultTTL, &cfg.Limits.DefaultTTL}, {f.Limits.MaxTTL, &cfg.Limits.MaxTTL}, {f.Limits.ReviewDeadline, &cfg.Limits.ReviewDeadline}} {
		if l.d.Duration > 0 {
			*l.dst = l.d.Duration
		}
	}
	if f.Limits.SubmitRate < 0 || f.Limits.SubmitBurst < 0 {
		return nil, fail(0, "limits.submit_rate", "submit_rate and submit_burst must not be negative")
	}
	cfg.Limits.SubmitRate, cfg.Limits.SubmitBurst = f.Limits.SubmitRate, f.Limits.SubmitBurst
	if cfg.Limits.DefaultTTL > cfg.Limits.MaxTTL {
		return nil, fail(f.Limits.DefaultTTL.Line, "limits.default_ttl", "%s is longer than max_ttl %s", cfg.Limits.DefaultTTL, cfg.Limits.MaxTTL)
	}
	for i, r := range f.Resources {
		field := fmt.Sprintf("resources[%d]", i)
		u, err := url.Parse(r.URI)
		if r.URI == "" || err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, fail(r.Line, field+".uri", "must be an absolute URI without a fragment, got %q", r.URI)
		}
		if _, dup := cfg.Resource(r.URI); dup {
			return nil, fail(r.Line, field+".uri", "resource %s is declared twice", r.URI)
		}
		// Resources are exact audiences: one beneath another would let a
		// token, a feed event or a use report for one pass for the other.
		for j, other := range cfg.Resources {
			if broker.ResourcesOverlap(r.URI, other.URI) {
				return nil, fail(r.Line, field+".uri", "resource %s overlaps resources[%d] %s: resources may not be nested "+
					"(narrow access beneath a resource with authorization detail locations instead)", r.URI, j, other.URI)
			}
		}
		res := broker.Resource{URI: r.URI, Name: r.Name, Description: r.Description}
		if len(r.Scopes) == 0 {
			return nil, fail(r.Line, field+".scopes", "a resource needs at least one scope")
		}
		for j, s := range r.Scopes {
			sf := fmt.Sprintf("%s.scopes[%d]", field, j)
			if s.Name == "" || strings.ContainsAny(s.Name, " \"\\") || s.Name == broker.ScopeOpenID {
				return nil, fail(s.Line, sf+".name", "%q is not a valid scope name", s.Name)
			}
			if _, dup := res.Scope(s.Name); dup {
				return nil, fail(s.Line, sf+".name", "scope %s is declared twice", s.Name)
			}
			if s.Description == "" {
				return nil, fail(s.Line, sf+".description", "say in one line what %s allows", s.Name)
			}
			risk, err := broker.ParseRisk(s.Risk)
			if err != nil {
				return nil, fail(s.Line, sf+".risk", "%v", err)
			}
			res.Scopes = append(res.Scopes, broker.Scope{Name: s.Name, Description: s.Description, Risk: risk})
		}
		for j, kn := range r.Keys {
			k, err := parseJWK(&kn)
			if err != nil {
				return nil, fail(kn.Line, fmt.Sprintf("%s.keys[%d]", field, j), "%v", err)
			}
			res.Keys = append(res.Keys, k)
		}
		if r.Workload != nil {
			w, err := r.Workload.build()
			if err != nil {
				return nil, fail(r.Line, field+".workload."+err.field, "%s", err.msg)
			}
			res.Workload = w
		}
		cfg.Resources = append(cfg.Resources, res)
	}
	for i, a := range f.Agents {
		field := fmt.Sprintf("agents[%d]", i)
		if a.ID == "" {
			return nil, fail(a.Line, field+".id", "an agent needs an id")
		}
		if _, dup := cfg.Agent(a.ID); dup {
			return nil, fail(a.Line, field+".id", "agent %s is declared twice", a.ID)
		}
		ag := broker.Agent{ID: a.ID, Name: a.Name, Owner: strings.TrimSpace(a.Owner), MaxTTL: a.MaxTTL.Duration,
			SubmitRate: a.SubmitRate, SubmitBurst: a.SubmitBurst}
		if why := broker.CheckOwner(ag.Owner); why != "" {
			return nil, fail(a.Line, field+".owner", "%s", why)
		}
		if a.SubmitRate < 0 || a.SubmitBurst < 0 {
			return nil, fail(a.Line, field+".submit_rate", "submit_rate and submit_burst must not be negative")
		}
		if ag.Name == "" {
			ag.Name = a.ID
		}
		for j, kn := range a.Keys {
			k, err := parseJWK(&kn)
			if err != nil {
				return nil, fail(kn.Line, fmt.Sprintf("%s.keys[%d]", field, j), "%v", err)
			}
			ag.Keys = append(ag.Keys, k)
		}
		if a.Workload != nil {
			w, err := a.Workload.build()
			if err != nil {
				return nil, fail(a.Line, field+".workload."+err.field, "%s", err.msg)
			}
			ag.Workload = w
		}
		if len(ag.Keys) == 0 && ag.Workload == nil {
			return nil, fail(a.Line, field, "agent %s has neither keys nor a workload identity, so it could never authenticate", a.ID)
		}
		for j, c := range a.Ceiling {
			cf := fmt.Sprintf("%s.ceiling[%d]", field, j)
			res, ok := cfg.Resource(c.Resource)
			if !ok {
				return nil, fail(c.Line, cf+".resource", "%q is not a declared resource", c.Resource)
			}
			for _, s := range c.Scopes {
				if _, ok := res.Scope(s); !ok {
					return nil, fail(c.Line, cf+".scopes", "scope %q is not in the catalogue of %s", s, res.URI)
				}
			}
			ag.Ceiling = append(ag.Ceiling, broker.CeilingEntry{Resource: c.Resource, Scopes: slices.Clone(c.Scopes)})
		}
		if ag.MaxTTL > cfg.Limits.MaxTTL {
			return nil, fail(a.MaxTTL.Line, field+".max_ttl", "%s is longer than limits.max_ttl %s", ag.MaxTTL, cfg.Limits.MaxTTL)
		}
		cfg.Agents = append(cfg.Agents, ag)
	}
	return cfg, nil
}

type fieldError struct{ field, msg string }

// build checks a workload identity.
func (w *workload) build() (*broker.WorkloadIdentity, *fieldError) {
	if u, err := url.Parse(w.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, &fieldError{"issuer", fmt.Sprintf("must be the URL of a trusted issuer, got %q", w.Issuer)}
	}
	if w.Subject == "" {
		return nil, &fieldError{"subject", "the exact subject (e.g. a SPIFFE ID) is required"}
	}
	return &broker.WorkloadIdentity{Issuer: w.Issuer, Subject: w.Subject, Audience: w.Audience}, nil
}

// parseJWK reads a public JWK written inline as a YAML/JSON mapping.
func parseJWK(n *yaml.Node) (jose.JSONWebKey, error) {
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("a key must be a JWK object: %v", err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := m[private]; ok {
			return jose.JSONWebKey{}, errors.New("this JWK holds a private key: paste only the public key (writ agent keygen prints it)")
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("not a valid JWK: %v", err)
	}
	if !k.IsPublic() {
		return jose.JSONWebKey{}, errors.New("this JWK holds a private key: paste only the public key (writ agent keygen prints it)")
	}
	if !k.Valid() {
		return jose.JSONWebKey{}, errors.New("not a usable public key")
	}
	return k, nil
}
