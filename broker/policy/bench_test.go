package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// BenchmarkEvaluate50RulesWithHistory is the budget: a policy of
// 50 rules, a third of them reading the agent's history, one request.
// Target ≤ 50 µs per evaluation.
func BenchmarkEvaluate50RulesWithHistory(b *testing.B) {
	var src strings.Builder
	src.WriteString("rules:\n")
	for i := range 50 {
		var when, effect string
		switch i % 5 {
		case 0:
			when, effect = fmt.Sprintf(`agent.recent.hour.denials + agent.recent.hour.refusals >= %d`, 3+i), "{deny: true, on_deny: quarantine_agent}"
		case 1:
			when, effect = fmt.Sprintf(`agent.active_grants > %d && "contents:write" in request.actions`, 5+i), "{require_approvals: 2}"
		case 2:
			when, effect = fmt.Sprintf(`agent.id == "bot-%d" && request.scopes.all(s, s == "contents:read")`, i), "{auto_approve: true}"
		case 3:
			when, effect = fmt.Sprintf(`request.ttl_seconds > %d && agent.recent.day.requests > 100`, 600+i), "{max_ttl: 10m}"
		case 4:
			when, effect = fmt.Sprintf(`"secrets:read" in request.actions && agent.owner.endsWith("@team-%d.example")`, i), "{label: critical}"
		}
		mode := ""
		if i%10 == 9 {
			mode = "    mode: log\n"
		}
		fmt.Fprintf(&src, "  - name: rule-%d\n%s    when: '%s'\n    effect: %s\n", i, mode, strings.ReplaceAll(when, "'", "''"), effect)
	}
	p := mustParse(b, src.String())
	in := input("release-bot", 20*time.Minute, "contents:read", "contents:write", "pulls:write")
	in.Request.Terms.Details = []broker.AuthorizationDetail{{Type: "deploy", Actions: []string{"promote", "rollback"}, Locations: []string{"https://ci.example"}}}
	in.History = &broker.AgentHistory{Hour: broker.HistoryCounts{Requests: 12, Denials: 1, Refusals: 1},
		Day: broker.HistoryCounts{Requests: 120, Denials: 3, Refusals: 2, Revocations: 1}, ActiveGrants: 4}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p.EvaluateEffects(ctx, in)
	}
}

// BenchmarkHistoryOf is the cost of reading an agent's history at each
// submission, with a day of marks at the rate limit's pace.
func BenchmarkHistoryOf(b *testing.B) {
	h := broker.NewHistory()
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	req := &broker.TaskRequest{AgentID: "a"}
	for i := range 2000 {
		h.Observe(broker.Event{Kind: broker.EventRequestSubmitted, At: t0.Add(time.Duration(i) * 40 * time.Second), Request: req})
	}
	now := t0.Add(2000 * 40 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		h.Of("a", now)
	}
}
