package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/broker/policy"
)

func TestLoadExample(t *testing.T) {
	p, err := policy.Load("../../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"triage-never-reads-secrets", "two-person-secret-rotation", "short-refunds", "docs-bot-reads-docs", "widening-follow-on",
		"three-strikes", "no-workflow-edits-without-a-pr"}
	if !slices.Equal(p.Rules(), want) {
		t.Errorf("rules = %v, want %v", p.Rules(), want)
	}
}

func TestEmptyPolicies(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "rules:\n", "rules: []\n", "---\n"} {
		p, err := policy.Parse("p.yaml", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if p.Len() != 0 {
			t.Errorf("%q: %d rules", src, p.Len())
		}
	}
}

// TestErrorsNameFileLineRuleAndField: every mistake is reported at its
// place, with the rule and the field, so the operator fixes it at once.
func TestErrorsNameFileLineRuleAndField(t *testing.T) {
	rule := func(when, effect string) string {
		return "rules:\n  - name: r1\n    when: " + when + "\n    effect:\n      " + effect + "\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"not yaml", "rules: [\n", "p.yaml:"},
		{"not a mapping", "- a\n", "p.yaml:1: a policy file is a mapping"},
		{"unknown top-level field", "rulez: []\n", `p.yaml:1: unknown field "rulez"`},
		{"rules not a list", "rules: {a: b}\n", "p.yaml:1: rules: must be a list"},
		{"rule not a mapping", "rules:\n  - just text\n", "p.yaml:2: rules[0]: a rule is a mapping"},
		{"no name", "rules:\n  - when: 'true'\n    effect: {label: low}\n", "p.yaml:2: rules[0].name: every rule needs a name"},
		{"bad name", "rules:\n  - name: 'a b'\n", `p.yaml:2: rules[0].name: "a b" is not a rule name`},
		{"unknown rule field", "rules:\n  - name: r1\n    whenn: 'true'\n", `p.yaml:3: rules[0] (r1): unknown field "whenn"`},
		{"no when", "rules:\n  - name: r1\n    effect: {label: low}\n", "p.yaml:2: rules[0] (r1).when: missing"},
		{"no effect", "rules:\n  - name: r1\n    when: 'true'\n", "p.yaml:2: rules[0] (r1).effect: missing"},
		{"bad CEL", rule(`request.agent ==`, "label: high"), "p.yaml:3: rules[0] (r1).when: column 17: Syntax error"},
		{"bad CEL on a later line", "rules:\n  - name: r1\n    when: |\n      request.agent == \"a\" &&\n        request.scopes ++ 1\n    effect: {label: high}\n", "p.yaml:5: rules[0] (r1).when: column"},
		{"undeclared variable", rule(`reqest.agent == "a"`, "label: high"), "p.yaml:3: rules[0] (r1).when: column 1: undeclared reference to 'reqest'"},
		{"misspelt field", rule(`'"a" in request.scope'`, "label: high"), `p.yaml:3: rules[0] (r1).when: column 15: request has no field "scope" (it has agent, intent`},
		{"misspelt agent field", rule(`agent.owner == "x" || agent.team == "y"`, "label: high"), `agent has no field "team"`},
		{"misspelt detail field", rule(`request.details.exists(d, d.action == "x")`, "label: high"), `p.yaml:3: rules[0] (r1).when: column 28: d has no field "action"`},
		{"non-bool", rule(`request.ttl_seconds + 1`, "label: high"), "p.yaml:3: rules[0] (r1).when: must be a bool expression, but its type is"},
		{"dyn is not bool", rule(`request.follow_on`, "label: high"), "compare it with a value"},
		{"string is not bool", rule(`agent.id`, "label: high"), "its type is string"},
		{"type error", rule(`agent.id > 3`, "label: high"), "p.yaml:3: rules[0] (r1).when:"},
		{"unknown effect", rule(`true`, "escalate: true"), `p.yaml:5: rules[0] (r1).effect: unknown effect "escalate"`},
		{"effect not a mapping", "rules:\n  - name: r1\n    when: 'true'\n    effect: deny\n", "p.yaml:4: rules[0] (r1).effect: must be a mapping"},
		{"bad duration", rule(`true`, "max_ttl: forever"), `p.yaml:5: rules[0] (r1).effect.max_ttl: "forever" is not a duration`},
		{"negative duration", rule(`true`, "max_ttl: -5m"), `effect.max_ttl: "-5m" is not a duration`},
		{"one approval is not a rule", rule(`true`, "require_approvals: 1"), "p.yaml:5: rules[0] (r1).effect.require_approvals: \"1\": want a number of distinct operators from 2"},
		{"approvals not a number", rule(`true`, "require_approvals: two"), "effect.require_approvals"},
		{"bad label", rule(`true`, "label: spicy"), `p.yaml:5: rules[0] (r1).effect.label: unknown label "spicy"`},
		{"deny not bool", rule(`true`, "deny: please"), `effect.deny: "please": write deny: true`},
		{"reason without deny", rule(`true`, "{label: high, reason: because}"), "effect.reason: a reason goes with deny"},
		{"deny with more", rule(`true`, "{deny: true, label: high}"), "deny stands alone"},
		{"auto with approvals", rule(`true`, "{auto_approve: true, require_approvals: 2}"), "contradict"},
		{"auto labelled high", rule(`true`, "{auto_approve: true, label: high}"), "only low-risk requests"},
		{"no effect at all", rule(`true`, "{auto_approve: false}"), "has no effect"},
		{"duplicate name", "rules:\n  - {name: r1, when: 'true', effect: {label: low}}\n  - {name: r1, when: 'true', effect: {label: low}}\n", "p.yaml:3: rules[1] (r1).name: rule r1 is declared twice"},
		{"empty when", "rules:\n  - {name: r1, when: '  ', effect: {label: low}}\n", "rules[0] (r1).when: must be a CEL expression"},
		{"huge expression", rule(`'"`+strings.Repeat("a", policy.MaxExpressionSize)+`" == agent.id'`, "label: low"), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("p.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\n want it to contain %q", err, tt.want)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *policy.Error", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := policy.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", policy.MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}
