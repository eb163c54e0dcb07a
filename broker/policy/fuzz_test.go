package policy_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/policy"
)

// FuzzParse: no policy file, however broken, panics the loader, and any
// policy that loads evaluates without panicking, to a known verdict.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../testdata/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"",
		"rules:\n  - {name: r, when: 'true', effect: {deny: true, reason: no}}\n",
		"rules:\n  - {name: r, when: 'request.scopes.all(s, s in parent.scopes)', effect: {label: high, max_ttl: 5m}}\n",
		"rules:\n  - {name: r, when: 'now.getHours(\"UTC\") < 7', effect: {require_approvals: 2}}\n",
		"rules:\n  - {name: r, when: 'request.details.exists(d, d.type == \"x\")', effect: {auto_approve: true}}\n",
		"rules:\n  - name: r\n    when: |\n      request.agent == 'a' &&\n      request.ttl_seconds > 60\n    effect:\n      label: low\n",
		"rules: &a [*a]\n",
		"rules:\n  - {name: r, when: '[[[[[[[[[[1]]]]]]]]]] == []', effect: {label: low}}\n",
		"rules:\n  - {name: r, mode: log, when: 'agent.recent.hour.denials > 1', effect: {deny: true, on_deny: quarantine_agent}}\n",
		"rules:\n  - {name: r, when: 'agent.active_grants >= 0', effect: {drop_actions: [contents:read], auto_approve: true}}\n",
		"rules:\n  - {name: r, when: '\"x\" in request.actions', effect: {deny: true, on_deny: revoke_parent}}\n  - {name: s, when: 'false', effect: {label: high}}\n",
	} {
		f.Add([]byte(s))
	}
	in := input("docs-bot", time.Minute, "contents:read")
	in.Request.Terms.Details = []broker.AuthorizationDetail{{Type: "x", Actions: []string{"contents:read"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse("fuzz.yaml", data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Lint()
		res := p.Evaluate(ctx, in)
		full, fx := p.EvaluateEffects(ctx, in)
		if full.Verdict == broker.VerdictAutoApprove && len(fx.DropActions) > 0 && res.Verdict == broker.VerdictAutoApprove {
			t.Fatal("Evaluate auto-approved a request whose drop_actions its caller will not apply")
		}
		if len(fx.OnDeny) > 0 && full.Verdict != broker.VerdictDeny {
			t.Fatalf("on_deny %v without a deny", fx.OnDeny)
		}
		switch res.Verdict {
		case broker.VerdictReview, broker.VerdictDeny, broker.VerdictAutoApprove:
		default:
			t.Fatalf("verdict %q", res.Verdict)
		}
		if res.AutoApprove && (res.Risk > broker.RiskLow || res.RequireApprovals > 1) {
			t.Fatalf("auto-approved a %s-risk request needing %d approvals", res.Risk, res.RequireApprovals)
		}
	})
}

func FuzzParseSample(f *testing.F) {
	f.Add([]byte(`{"agent": {"id": "docs-bot"}, "scopes": ["contents:read"], "resource": "https://git.example", "ttl": "10m",
"parent": {"scopes": ["contents:read"], "ttl": "1h"}, "history": {"hour": {"denials": 2}, "active_grants": 1}}`))
	f.Add([]byte(`{"agent": {"id": "a"}, "authorization_details": [{"type": "x", "actions": ["y"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := policy.ParseSample("req.json", data)
		if err != nil {
			return
		}
		in := s.Input(nil, time.Time{})
		if in.Request.AgentID == "" {
			t.Fatal("a sample without an agent parsed")
		}
	})
}
