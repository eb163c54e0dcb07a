package policy_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/policy"
)

func withHistory(in broker.PolicyInput, h broker.AgentHistory) broker.PolicyInput {
	in.History = &h
	return in
}

func withDetail(in broker.PolicyInput, d broker.AuthorizationDetail) broker.PolicyInput {
	in.Request.Terms.Details = append(in.Request.Terms.Details, d)
	return in
}

func TestHistoryAndActionsVariables(t *testing.T) {
	busy := broker.AgentHistory{
		Hour:         broker.HistoryCounts{Requests: 9, Denials: 2, Refusals: 1, Revocations: 1},
		Day:          broker.HistoryCounts{Requests: 40, Denials: 5, Refusals: 3, Revocations: 2},
		ActiveGrants: 4,
	}
	tests := []struct {
		name, when string
		in         broker.PolicyInput
		match      bool
	}{
		{"hour denials", "agent.recent.hour.denials + agent.recent.hour.refusals >= 3", withHistory(input("a", time.Hour, "contents:read"), busy), true},
		{"hour below", "agent.recent.hour.denials + agent.recent.hour.refusals >= 4", withHistory(input("a", time.Hour, "contents:read"), busy), false},
		{"day requests", "agent.recent.day.requests > 39 && agent.recent.day.revocations == 2", withHistory(input("a", time.Hour, "contents:read"), busy), true},
		{"active grants", "agent.active_grants >= 4", withHistory(input("a", time.Hour, "contents:read"), busy), true},
		{"no history reads as zero", "agent.active_grants == 0 && agent.recent.hour.requests == 0", input("a", time.Hour, "contents:read"), true},
		{"agent fields still strings", `agent.id == "a" && agent.owner.endsWith("@example")`, input("a", time.Hour, "contents:read"), true},
		{"request.actions has scopes and detail actions, without openid", `request.actions == ["contents:read", "refund", "view"]`,
			withDetail(input("a", time.Hour, "openid", "contents:read"), broker.AuthorizationDetail{Type: "payment", Actions: []string{"view", "refund"}}), true},
		{"request.actions sees a detail action", `"refund" in request.actions && !("refund" in request.scopes)`,
			withDetail(input("a", time.Hour, "contents:read"), broker.AuthorizationDetail{Type: "payment", Actions: []string{"refund"}}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, fmt.Sprintf("rules:\n  - name: r\n    when: '%s'\n    effect: {label: critical}\n", tt.when))
			res := p.Evaluate(context.Background(), tt.in)
			matched := slices.Contains(res.Trace, "rule r → label critical")
			if matched != tt.match {
				t.Fatalf("matched = %v, want %v; trace %q", matched, tt.match, res.Trace)
			}
		})
	}
}

func TestHistoryFieldsAreCheckedAtLoad(t *testing.T) {
	for _, tt := range []struct{ when, want string }{
		{"agent.recent.hour.denial > 1", `agent.recent.hour has no field "denial" (it has requests, denials, refusals, revocations)`},
		{"agent.recent.week.denials > 1", `agent.recent has no field "week" (it has hour, day)`},
		{`agent.active_grant == ""`, `agent has no field "active_grant"`},
		{"request.action == []", `request has no field "action"`},
		{`agent.active_grants == "4"`, "no matching overload"},
		{`agent.recent.hour.requests > "x"`, "no matching overload"},
	} {
		t.Run(tt.when, func(t *testing.T) {
			_, err := policy.Parse("p.yaml", fmt.Appendf(nil, "rules:\n  - name: r\n    when: '%s'\n    effect: {label: high}\n", tt.when))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewEffectsParse(t *testing.T) {
	for _, tt := range []struct{ name, rule, want string }{
		{"mode log", "    mode: log\n    effect: {deny: true}\n", ""},
		{"mode enforce", "    mode: enforce\n    effect: {deny: true}\n", ""},
		{"bad mode", "    mode: dry-run\n    effect: {deny: true}\n", `(r).mode: "dry-run": want enforce`},
		{"drop_actions", "    effect: {drop_actions: [contents:write, secrets:read]}\n", ""},
		{"drop_actions with auto_approve", "    effect: {drop_actions: [contents:write], auto_approve: true}\n", ""},
		{"drop_actions scalar", "    effect: {drop_actions: contents:write}\n", "effect.drop_actions: must be a list"},
		{"drop_actions empty", "    effect: {drop_actions: []}\n", "effect.drop_actions: must be a list"},
		{"drop openid", "    effect: {drop_actions: [openid]}\n", "openid is not an action"},
		{"drop with deny", "    effect: {deny: true, drop_actions: [a]}\n", "deny stands alone"},
		{"on_deny", "    effect: {deny: true, on_deny: quarantine_agent}\n", ""},
		{"on_deny parent", "    effect: {deny: true, on_deny: revoke_parent}\n", ""},
		{"on_deny without deny", "    effect: {label: high, on_deny: revoke_parent}\n", "on_deny goes with deny: true"},
		{"on_deny unknown", "    effect: {deny: true, on_deny: page_someone}\n", `effect.on_deny: "page_someone": want revoke_parent or quarantine_agent`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("p.yaml", []byte("rules:\n  - name: r\n    when: 'true'\n"+tt.rule))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDropActions(t *testing.T) {
	p := mustParse(t, `rules:
  - name: no-pushes
    when: agent.id == "docs-bot"
    effect: {drop_actions: [contents:write, refund]}
  - name: docs-bot-reads
    when: agent.id == "docs-bot"
    effect: {auto_approve: true}
`)
	tests := []struct {
		name    string
		in      broker.PolicyInput
		verdict string
		risk    broker.Risk
		dropped []string
		trace   string
	}{
		{"high-risk write dropped, the low-risk rest auto-approved", input("docs-bot", time.Hour, "contents:read", "contents:write"),
			broker.VerdictAutoApprove, broker.RiskLow, []string{"contents:write"}, "drop_actions: contents:write removed before review; risk of the rest is low"},
		{"detail action dropped too", withDetail(input("docs-bot", time.Hour, "contents:read"), broker.AuthorizationDetail{Type: "payment", Actions: []string{"refund"}}),
			broker.VerdictAutoApprove, broker.RiskLow, []string{"refund"}, "drop_actions: refund removed"},
		{"nothing to drop", input("docs-bot", time.Hour, "contents:read"),
			broker.VerdictAutoApprove, broker.RiskLow, nil, "drop_actions: the request has none of those actions"},
		{"dropping everything denies", input("docs-bot", time.Hour, "contents:write"),
			broker.VerdictDeny, broker.RiskHigh, nil, "verdict: deny by rule no-pushes"},
		{"other agents keep what they asked", input("release-bot", time.Hour, "contents:write"),
			broker.VerdictReview, broker.RiskHigh, nil, "verdict: review by an operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, fx := p.EvaluateEffects(context.Background(), tt.in)
			if res.Verdict != tt.verdict || res.Risk != tt.risk || !slices.Equal(fx.DropActions, tt.dropped) {
				t.Fatalf("verdict %s risk %s dropped %v, want %s %s %v; trace %q", res.Verdict, res.Risk, fx.DropActions,
					tt.verdict, tt.risk, tt.dropped, res.Trace)
			}
			if !slices.ContainsFunc(res.Trace, func(l string) bool { return strings.HasPrefix(l, tt.trace) }) {
				t.Errorf("trace %q has no line %q", res.Trace, tt.trace)
			}
			if tt.in.Request.Terms.Scopes[0] != "contents:read" && tt.in.Request.Terms.Scopes[0] != "contents:write" {
				t.Errorf("the input was modified: %v", tt.in.Request.Terms.Scopes)
			}
		})
	}
}

func TestOnDenyEffects(t *testing.T) {
	p := mustParse(t, `rules:
  - name: three-strikes
    when: agent.recent.hour.denials + agent.recent.hour.refusals >= 3
    effect: {deny: true, reason: three denials in an hour, on_deny: quarantine_agent}
  - name: no-widening
    when: request.follow_on && has(parent.scopes) && !request.scopes.all(s, s in parent.scopes)
    effect: {deny: true, on_deny: revoke_parent}
  - name: broken
    when: request.ttl_seconds / 0 > 1
    effect: {deny: true, on_deny: quarantine_agent}
`)
	strikes := broker.AgentHistory{Hour: broker.HistoryCounts{Denials: 1, Refusals: 2}}
	tests := []struct {
		name string
		in   broker.PolicyInput
		want []broker.OnDenyEffect
	}{
		{"third strike quarantines", withHistory(input("a", time.Hour, "contents:read"), strikes),
			[]broker.OnDenyEffect{{Action: broker.OnDenyQuarantineAgent, Rule: "three-strikes"}}},
		{"widening follow-on ends its parent", followOn(input("a", time.Hour, "contents:write"), "contents:read"),
			[]broker.OnDenyEffect{{Action: broker.OnDenyRevokeParent, Rule: "no-widening"}}},
		{"both", withHistory(followOn(input("a", time.Hour, "contents:write"), "contents:read"), strikes),
			[]broker.OnDenyEffect{{Action: broker.OnDenyQuarantineAgent, Rule: "three-strikes"}, {Action: broker.OnDenyRevokeParent, Rule: "no-widening"}}},
		// A rule that cannot be evaluated still denies, but does not
		// quarantine anyone on the strength of an error.
		{"an error denies without on_deny", input("a", time.Hour, "contents:read"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, fx := p.EvaluateEffects(context.Background(), tt.in)
			if res.Verdict != broker.VerdictDeny {
				t.Fatalf("verdict %s, want deny; trace %q", res.Verdict, res.Trace)
			}
			if !reflect.DeepEqual(fx.OnDeny, tt.want) {
				t.Fatalf("on_deny %v, want %v", fx.OnDeny, tt.want)
			}
		})
	}
}

// Shadow rules never change an outcome: a policy with shadow rules added
// (of every effect, matching or not) gives the same result as without
// them, but for the "shadow rule" trace lines.
func TestShadowRulesNeverChangeAnOutcome(t *testing.T) {
	base := `rules:
  - name: triage-never-reads-secrets
    when: agent.id.startsWith("triage") && "secrets:read" in request.scopes
    effect: {deny: true}
  - name: short
    when: '"contents:write" in request.scopes'
    effect: {max_ttl: 10m}
  - name: docs-bot-reads-docs
    when: agent.id == "docs-bot" && request.scopes.all(s, s == "contents:read")
    effect: {auto_approve: true}
`
	shadows := []string{
		"{deny: true, on_deny: quarantine_agent}", "{require_approvals: 3}", "{max_ttl: 1m}", "{auto_approve: true}",
		"{label: critical}", "{drop_actions: [contents:read, contents:write]}",
	}
	whens := []string{"true", `agent.id == "docs-bot"`, `"contents:write" in request.scopes`, "request.ttl_seconds / 0 > 1"}
	shadowed := base
	for i, e := range shadows {
		for j, w := range whens {
			shadowed += fmt.Sprintf("  - name: shadow-%d-%d\n    mode: log\n    when: '%s'\n    effect: %s\n", i, j, strings.ReplaceAll(w, "'", "''"), e)
		}
	}
	plain, withShadows := mustParse(t, base), mustParse(t, shadowed)
	var inputs []broker.PolicyInput
	for _, agent := range []string{"docs-bot", "triage-bot", "release-bot"} {
		for _, scopes := range [][]string{{"contents:read"}, {"contents:write"}, {"contents:read", "secrets:read"}, {"pulls:write"}} {
			inputs = append(inputs, input(agent, time.Hour, scopes...), followOn(input(agent, time.Hour, scopes...), "contents:read"))
		}
	}
	hits := 0
	for _, in := range inputs {
		want, wantFx := plain.EvaluateEffects(context.Background(), in)
		got, gotFx := withShadows.EvaluateEffects(context.Background(), in)
		hits += len(gotFx.Shadow)
		got.Trace = slices.DeleteFunc(got.Trace, func(l string) bool { return strings.HasPrefix(l, "shadow rule ") })
		gotFx.Shadow = nil
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotFx, wantFx) {
			t.Errorf("%s %v: with shadow rules\n%+v %+v\nwithout\n%+v %+v", in.Request.AgentID, in.Request.Terms.Scopes, got, gotFx, want, wantFx)
		}
	}
	if hits == 0 {
		t.Fatal("no shadow rule matched: the test proves nothing")
	}
}

func TestShadowRuleTraceSaysWouldDeny(t *testing.T) {
	p := mustParse(t, "rules:\n  - name: maybe-no-writes\n    mode: log\n    when: '\"contents:write\" in request.scopes'\n    effect: {deny: true}\n")
	res, fx := p.EvaluateEffects(context.Background(), input("release-bot", time.Hour, "contents:write"))
	if res.Verdict != broker.VerdictReview {
		t.Fatalf("verdict %s: a shadow rule was enforced", res.Verdict)
	}
	want := "shadow rule maybe-no-writes would deny (mode: log, not enforced)"
	if !slices.Contains(res.Trace, want) {
		t.Fatalf("trace %q lacks %q", res.Trace, want)
	}
	if !reflect.DeepEqual(fx.Shadow, []broker.ShadowHit{{Rule: "maybe-no-writes", Effect: "deny"}}) {
		t.Fatalf("shadow hits %v", fx.Shadow)
	}
}

// A caller that applies no effects (Evaluate, not EvaluateEffects) must
// not auto-approve a request on the strength of drop_actions it will not
// apply: the high-risk write would be granted.
func TestEvaluateWithoutEffectsNeverAutoApprovesWhatItWouldNarrow(t *testing.T) {
	p := mustParse(t, `rules:
  - name: no-pushes
    when: agent.id == "docs-bot"
    effect: {drop_actions: [contents:write]}
  - name: docs-bot-reads
    when: agent.id == "docs-bot"
    effect: {auto_approve: true}
`)
	in := input("docs-bot", time.Hour, "contents:read", "contents:write")
	if res, _ := p.EvaluateEffects(context.Background(), in); res.Verdict != broker.VerdictAutoApprove {
		t.Fatalf("with effects: %s", res.Verdict)
	}
	res := p.Evaluate(context.Background(), in)
	if res.Verdict != broker.VerdictReview || res.AutoApprove || res.Risk != broker.RiskHigh {
		t.Fatalf("without effects: verdict %s risk %s; trace %q", res.Verdict, res.Risk, res.Trace)
	}
	if last := res.Trace[len(res.Trace)-1]; last != "verdict: review by an operator" {
		t.Fatalf("last trace line %q", last)
	}
	// A request with nothing to drop is unaffected.
	if res := p.Evaluate(context.Background(), input("docs-bot", time.Hour, "contents:read")); res.Verdict != broker.VerdictAutoApprove {
		t.Fatalf("nothing dropped: %s", res.Verdict)
	}
}

// End to end through Submit: whether or not Submit applies drop_actions,
// pulls:write is never granted without a person. Applied, the request is
// narrowed and auto-approved; not applied, it waits, as asked, for an
// operator.
func TestSubmitNeverAutoApprovesUnappliedDrops(t *testing.T) {
	e := newEnv(t, mustParse(t, `rules:
  - name: no-pulls
    when: agent.id == "docs-bot"
    effect: {drop_actions: [pulls:write]}
  - name: docs-bot-reads
    when: agent.id == "docs-bot"
    effect: {auto_approve: true}
`))
	r := e.mustSubmit("docs-bot", gitURI, 0, "contents:read", "pulls:write")
	switch r.State {
	case broker.RequestPending:
		if !slices.Contains(r.Terms.Scopes, "pulls:write") || r.Policy.Risk != broker.RiskMedium {
			t.Fatalf("pending with terms %v risk %s", r.Terms.Scopes, r.Policy.Risk)
		}
	case broker.RequestApproved:
		if slices.Contains(r.Terms.Scopes, "pulls:write") {
			t.Fatalf("auto-approved with pulls:write; trace %q", r.Policy.Trace)
		}
	default:
		t.Fatalf("state %s", r.State)
	}
}
