package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/writhq/writ/broker"
)

// MaxSampleSize bounds a sample request file.
const MaxSampleSize = 1 << 20

// Sample is a request written by hand for `writ policy test`: what an
// agent asks for, who it is, and optionally its parent grant, its history
// and the time it arrives. Unknown fields are errors, so a misspelt field
// is not a silently empty one.
type Sample struct {
	Agent struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Owner string `json:"owner"`
	} `json:"agent"`
	Intent    string                       `json:"intent"`
	Scopes    []string                     `json:"scopes"`
	Details   []broker.AuthorizationDetail `json:"authorization_details"`
	Resource  string                       `json:"resource"`
	TTL       string                       `json:"ttl"` // a duration: 15m
	LoginHint string                       `json:"login_hint"`
	// Parent, when set, makes the request a follow-on of a grant with
	// these terms.
	Parent *struct {
		Scopes   []string `json:"scopes"`
		Resource string   `json:"resource"`
		TTL      string   `json:"ttl"`
	} `json:"parent"`
	Now     *time.Time           `json:"now"` // default: the time of the test
	History *broker.AgentHistory `json:"history"`
}

// ParseSample reads a sample request.
func ParseSample(name string, data []byte) (*Sample, error) {
	if len(data) > MaxSampleSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxSampleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Sample
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %s", name, jsonError(data, err))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one JSON value", name)
	}
	switch {
	case s.Agent.ID == "":
		return nil, fmt.Errorf("%s: agent.id: every request comes from an agent", name)
	case len(s.Scopes) == 0 && len(s.Details) == 0:
		return nil, fmt.Errorf("%s: scopes: a request asks for at least one scope or authorization detail", name)
	}
	for _, d := range []struct{ field, v string }{{"ttl", s.TTL}, {"parent.ttl", parentTTL(&s)}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: %s: %q is not a duration (write e.g. 15m)", name, d.field, clip(d.v))
		}
	}
	return &s, nil
}

func parentTTL(s *Sample) string {
	if s.Parent == nil {
		return ""
	}
	return s.Parent.TTL
}

// jsonError says where in data a decoding error is.
func jsonError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var off int64
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return err.Error()
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return fmt.Sprintf("line %d: %v", line, err)
}

// Input is the policy input the sample stands for: the agent and the
// resource come from the configuration when it knows them (for their
// names and the catalogue's risk), else from the sample alone.
func (s *Sample) Input(cfg *broker.Config, now time.Time) broker.PolicyInput {
	ttl, _ := time.ParseDuration(s.TTL)
	if ttl == 0 && cfg != nil {
		ttl = cfg.Limits.DefaultTTL
	}
	in := broker.PolicyInput{
		Request: &broker.TaskRequest{ID: "sample", AgentID: s.Agent.ID, LoginHint: s.LoginHint, Intent: s.Intent,
			Terms: broker.Terms{Scopes: s.Scopes, Details: s.Details, Resource: s.Resource, TTL: ttl}},
		Agent:   &broker.Agent{ID: s.Agent.ID, Name: s.Agent.Name, Owner: s.Agent.Owner},
		Now:     now,
		History: s.History,
	}
	if cfg != nil {
		if a, ok := cfg.Agent(s.Agent.ID); ok {
			c := *a
			if s.Agent.Name != "" {
				c.Name = s.Agent.Name
			}
			if s.Agent.Owner != "" {
				c.Owner = s.Agent.Owner
			}
			in.Agent = &c
		}
		if r, ok := cfg.Resource(s.Resource); ok {
			in.Resource = r
		}
	}
	if s.Now != nil {
		in.Now = *s.Now
	}
	if s.Parent != nil {
		pttl, _ := time.ParseDuration(s.Parent.TTL)
		in.Request.ParentID = "sample-parent"
		in.Parent = &broker.Grant{ID: "sample-parent-grant", AgentID: s.Agent.ID,
			Terms: broker.Terms{Scopes: s.Parent.Scopes, Resource: s.Parent.Resource, TTL: pttl}}
	}
	return in
}
