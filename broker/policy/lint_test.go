package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker/policy"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each finding, in order, as "rule: text"
	}{
		{"the example is clean", "", nil},
		{"never matches", `rules:
  - {name: off, when: 'false && agent.id == "x"', effect: {label: high}}
  - {name: arith, when: '1 + 1 == 3', effect: {label: high}}
`, []string{"off: when is always false", "arith: when is always false"}},
		{"deny everything makes later rules unreachable", `rules:
  - {name: lockdown, when: 'true', effect: {deny: true}}
  - {name: later, when: 'agent.id == "x"', effect: {label: high}}
  - {name: logged, mode: log, when: 'agent.id == "x"', effect: {label: high}}
`, []string{"lockdown: when is always true", "later: unreachable: rule lockdown denies every request"}},
		{"auto_approve labelled medium", `rules:
  - {name: meh, when: 'agent.id == "x"', effect: {auto_approve: true, label: medium}}
`, []string{"meh: auto_approve can never apply: the rule labels the request medium"}},
		{"auto_approve against approvals for all", `rules:
  - {name: early-auto, when: 'agent.id == "x"', effect: {auto_approve: true}}
  - {name: two-always, when: 'true', effect: {require_approvals: 2}}
  - {name: late-auto, when: 'agent.id == "y"', effect: {auto_approve: true}}
`, []string{"early-auto: auto_approve can never apply: rule two-always requires 2", "late-auto: auto_approve can never apply: rule two-always requires 2"}},
		{"overlapping denies", `rules:
  - {name: no-secrets, when: '"secrets:read" in request.scopes', effect: {deny: true}}
  - {name: no-triage-secrets, when: 'agent.id == "triage" &&   "secrets:read" in request.scopes', effect: {deny: true, reason: x}}
  - {name: other, when: 'agent.id == "triage"', effect: {deny: true}}
`, []string{"no-triage-secrets: overlaps deny rule no-secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *policy.Policy
			if tt.src == "" {
				p = examplePolicy(t)
			} else {
				p = mustParse(t, tt.src)
			}
			got := p.Lint()
			if len(got) != len(tt.want) {
				t.Fatalf("findings %v, want %v", got, tt.want)
			}
			for i, f := range got {
				rule, text, _ := strings.Cut(tt.want[i], ": ")
				if f.Rule != rule || !strings.HasPrefix(f.Msg, text) || f.Line == 0 {
					t.Errorf("finding %d: %s, want %s", i, f, tt.want[i])
				}
			}
		})
	}
}

func TestParseSample(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"ok", `{"agent": {"id": "docs-bot"}, "scopes": ["contents:read"], "resource": "https://git.example", "ttl": "10m"}`, ""},
		{"unknown field", `{"agent": {"id": "docs-bot"}, "scope": ["contents:read"]}`, `unknown field "scope"`},
		{"no agent", `{"scopes": ["contents:read"]}`, "agent.id"},
		{"nothing asked", `{"agent": {"id": "a"}}`, "scopes:"},
		{"bad ttl", `{"agent": {"id": "a"}, "scopes": ["x"], "ttl": "ten"}`, `ttl: "ten" is not a duration`},
		{"syntax error line", "{\n\"agent\": {\"id\": \"a\"},\n\"scopes\": [\"x\",]}", "line 3:"},
		{"two values", `{"agent": {"id": "a"}, "scopes": ["x"]} {}`, "more than one JSON value"},
		{"type", `{"agent": {"id": "a"}, "scopes": "x"}`, "cannot unmarshal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := policy.ParseSample("req.json", []byte(tt.src))
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			case tt.want == "":
				in := s.Input(serviceConfig(), time.Now())
				if in.Resource == nil || in.Request.Terms.TTL != 10*time.Minute || in.Agent.ID != "docs-bot" {
					t.Fatalf("input %+v", in)
				}
			}
		})
	}
}
