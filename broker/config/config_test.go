package config

import (
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

func TestLoadExample(t *testing.T) {
	cfg, err := Load("../../testdata/writ.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Agents) != 4 || len(cfg.Resources) != 3 {
		t.Fatalf("got %d agents, %d resources", len(cfg.Agents), len(cfg.Resources))
	}
	if !cfg.RequireDPoP || cfg.Limits.MaxTTL != time.Hour || cfg.Limits.ReviewDeadline != 10*time.Minute {
		t.Errorf("limits not read: %+v", cfg.Limits)
	}
	res, _ := cfg.Resource("https://git.acme.example")
	if s, ok := res.Scope("workflows:write"); !ok || s.Risk != broker.RiskCritical {
		t.Errorf("workflows:write = %+v", s)
	}
	if b, _ := cfg.Resource("https://billing.acme.example"); len(b.Keys) != 1 {
		t.Errorf("billing's own key not read: %+v", b.Keys)
	}
	a, _ := cfg.Agent("rotator")
	if a.Workload == nil || a.Workload.Subject != "spiffe://acme.example/ns/ops/sa/rotator" {
		t.Errorf("workload identity not read: %+v", a.Workload)
	}
	if a, _ := cfg.Agent("release-bot"); len(a.Keys) != 1 || !a.Keys[0].IsPublic() {
		t.Errorf("release-bot keys = %+v", a.Keys)
	}
	if cfg.PolicyFile != "../../testdata/policy.yaml" {
		t.Errorf("policy file %q", cfg.PolicyFile)
	}
}

func TestEmptyFileIsEmptyConfig(t *testing.T) {
	cfg, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Agents) != 0 || cfg.Limits != broker.DefaultLimits {
		t.Errorf("got %+v", cfg)
	}
}

func TestErrorsNameFileLineAndField(t *testing.T) {
	const key = `{"kty":"OKP","crv":"Ed25519","x":"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0"}`
	base := "resources:\n  - uri: https://r.example\n    scopes:\n      - {name: read, risk: low, description: Read}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level field", "agentz: []\n", "bad.yaml:1: agentz: unknown field; did you mean agents?"},
		{"unknown nested field", base + "agents:\n  - id: a\n    colour: red\n", "bad.yaml:7: agents[0].colour: unknown field; the fields here are ceiling, id, keys, max_ttl, name, owner, submit_burst, submit_rate, workload"},
		{"bad risk", "resources:\n  - uri: https://r.example\n    scopes:\n      - {name: read, risk: spicy, description: Read}\n", "bad.yaml:4: resources[0].scopes[0].risk: unknown risk \"spicy\""},
		{"missing description", "resources:\n  - uri: https://r.example\n    scopes:\n      - {name: read, risk: low}\n", "bad.yaml:4: resources[0].scopes[0].description"},
		{"relative uri", "resources:\n  - uri: /r\n    scopes: []\n", "bad.yaml:2: resources[0].uri: must be an absolute URI"},
		{"bad duration", "limits:\n  max_ttl: forever\n", "bad.yaml:2: \"forever\" is not a duration"},
		{"ceiling beyond catalogue", base + "agents:\n  - id: a\n    keys: [" + key + "]\n    ceiling:\n      - resource: https://r.example\n        scopes: [write]\n", "bad.yaml:9: agents[0].ceiling[0].scopes: scope \"write\" is not in the catalogue"},
		{"ceiling unknown resource", base + "agents:\n  - id: a\n    keys: [" + key + "]\n    ceiling:\n      - resource: https://other.example\n        scopes: [read]\n", "agents[0].ceiling[0].resource: \"https://other.example\" is not a declared resource"},
		{"no way to authenticate", base + "agents:\n  - id: a\n", "bad.yaml:6: agents[0]: agent a has neither keys nor a workload identity"},
		{"private key pasted", base + "agents:\n  - id: a\n    keys: [{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0\",\"d\":\"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0\"}]\n", "holds a private key"},
		{"duplicate agent", base + "agents:\n  - {id: a, keys: [" + key + "]}\n  - {id: a, keys: [" + key + "]}\n", "bad.yaml:7: agents[1].id: agent a is declared twice"},
		{"agent max beyond limit", base + "agents:\n  - id: a\n    max_ttl: 5h\n    keys: [" + key + "]\n", "agents[0].max_ttl: 5h0m0s is longer than limits.max_ttl"},
		{"workload without subject", base + "agents:\n  - id: a\n    workload: {issuer: https://spire.example}\n", "agents[0].workload.subject"},
		{"not yaml", "agents: [\n", "bad.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\n want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPolicyFileIsResolvedBesideTheConfiguration(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"", ""},
		{"policy: policy.yaml\n", "/etc/writ/policy.yaml"},
		{"policy: rules/prod.yaml\n", "/etc/writ/rules/prod.yaml"},
		{"policy: /srv/policy.yaml\n", "/srv/policy.yaml"},
	} {
		cfg, err := Parse("/etc/writ/writ.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.PolicyFile != tt.want {
			t.Errorf("%q: policy file %q, want %q", tt.yaml, cfg.PolicyFile, tt.want)
		}
	}
}

func TestFeedStreamsPerReceiver(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want int
		err  bool
	}{
		{"", 0, false},
		{"feed_streams_per_receiver: 2000\n", 2000, false},
		{"feed_streams_per_receiver: -1\n", 0, true},
		{"feed_streams_per_receiver: 100000\n", 0, true},
	} {
		cfg, err := Parse("writ.yaml", []byte(tc.yaml))
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "feed_streams_per_receiver") {
				t.Errorf("%q: err %v, want one naming feed_streams_per_receiver", tc.yaml, err)
			}
			continue
		}
		if err != nil || cfg.FeedStreamsPerReceiver != tc.want {
			t.Errorf("%q: %v, %v; want %d", tc.yaml, cfg, err, tc.want)
		}
	}
}

func TestPushAllow(t *testing.T) {
	cfg, err := Parse("writ.yaml", []byte("push_allow: [10.1.2.0/24, feed.corp.example]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.PushAllow) != 2 {
		t.Fatalf("PushAllow = %v", cfg.PushAllow)
	}
	_, err = Parse("writ.yaml", []byte("push_allow: [10.0.0.0/33]\n"))
	if err == nil || !strings.Contains(err.Error(), "push_allow") {
		t.Fatalf("bad CIDR: %v", err)
	}
}

// Issue 10: an unknown field is named by its path with the nearest valid
// field, and no message names a Go type.
func TestUnknownFieldsNamePathAndNearest(t *testing.T) {
	const key = `{"kty":"OKP","crv":"Ed25519","x":"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0"}`
	base := "resources:\n  - uri: https://r.example\n    scopes:\n      - {name: read, risk: low, description: Read}\n"
	for _, tc := range []struct{ yaml, want string }{
		{base + "agents:\n  - {id: a, keys: [" + key + "]}\n  - id: b\n    ceilling: []\n", "bad.yaml:8: agents[1].ceilling: unknown field; did you mean ceiling?"},
		{base + "agents:\n  - id: a\n    keys: [" + key + "]\n    ceiling:\n      - resource: https://r.example\n        scope: [read]\n", "agents[0].ceiling[0].scope: unknown field; did you mean scopes?"},
		{"limits:\n  max_tll: 1h\n", "bad.yaml:2: limits.max_tll: unknown field; did you mean max_ttl?"},
		{"resources:\n  - uri: https://r.example\n    scopes:\n      - {name: read, risc: low, description: Read}\n", "resources[0].scopes[0].risc: unknown field; did you mean risk?"},
		{"limits:\n  submit_rate: fast\n", "expects a number, got the string \"fast\""},
		{"agents: {id: a}\n", "expects a list"},
	} {
		_, err := Parse("bad.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
			continue
		}
		for _, goWord := range []string{"config.", "float64", "[]", "not found in type"} {
			if strings.Contains(err.Error(), goWord) {
				t.Errorf("%q: error %q names a Go type (%s)", tc.yaml, err, goWord)
			}
		}
	}
}

func TestSubmitLimits(t *testing.T) {
	const key = `{"kty":"OKP","crv":"Ed25519","x":"qoIJTi2LpL4P7W1htqjjBq4drijQBhIJGyOq72fVPv0"}`
	cfg, err := Parse("w.yaml", []byte("limits:\n  submit_rate: 2\n  submit_burst: 5\nagents:\n  - {id: a, keys: ["+key+"], submit_rate: 0.1, submit_burst: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.SubmitRate != 2 || cfg.Limits.SubmitBurst != 5 || cfg.Agents[0].SubmitRate != 0.1 || cfg.Agents[0].SubmitBurst != 1 {
		t.Fatalf("limits %+v, agent %+v", cfg.Limits, cfg.Agents[0])
	}
	if _, err := Parse("w.yaml", []byte("limits:\n  submit_rate: -1\n")); err == nil {
		t.Fatal("negative submit_rate accepted")
	}
}
