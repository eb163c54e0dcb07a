package policy_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/broker/policy"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// candidate differs from testdata/policy.yaml in known ways: docs-bot is
// no longer auto-approved, release-bot may not push, triage-bot's reads
// are auto-approved, an agent denied within the hour is refused, and
// secret rotation needs three people.
const candidate = `rules:
  - name: triage-never-reads-secrets
    when: agent.id.startsWith("triage") && "secrets:read" in request.scopes
    effect: {deny: true}
  - name: no-release-pushes
    when: agent.id == "release-bot" && "contents:write" in request.actions
    effect: {deny: true}
  - name: cool-down
    when: agent.recent.hour.denials >= 1
    effect: {deny: true}
  - name: triage-reads
    when: agent.id == "triage-bot" && request.scopes.all(s, s == "contents:read")
    effect: {auto_approve: true}
  - name: three-person-rotation
    when: '"secrets:rotate" in request.scopes'
    effect: {require_approvals: 3}
  - name: maybe-no-pulls
    mode: log
    when: '"pulls:write" in request.scopes'
    effect: {deny: true}
`

// TestReplayFindsTheKnownFlips generates an audit log with the example
// policy live and a person deciding, then replays the candidate over it.
func TestReplayFindsTheKnownFlips(t *testing.T) {
	ctx := context.Background()
	st := brokertest.NewStore()
	clock := &testClock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	cfg := serviceConfig()
	svc, err := broker.New(ctx, cfg, st, broker.Options{Issuer: "https://writ.example", Policy: examplePolicy(t),
		Logger: quiet(), Now: clock.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(agent, resource string, scopes ...string) (*broker.TaskRequest, error) {
		clock.Advance(time.Minute)
		return svc.Submit(ctx, agent, broker.SubmitInput{LoginHint: "oncall", Intent: "the task", Scopes: scopes, Resource: resource})
	}
	must := func(r *broker.TaskRequest, err error) *broker.TaskRequest {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	want := map[[2]string][]string{} // from, to → request ids
	flip := func(from, to, id string) {
		want[[2]string{from, to}] = append(want[[2]string{from, to}], policy.RequestRef(id))
	}

	// Before the window: the same kinds of request, never counted.
	must(submit("docs-bot", gitURI, "contents:read"))
	clock.Advance(2 * 24 * time.Hour)
	since := clock.Now()

	for range 3 { // auto-approved before, a person would have to look now
		r := must(submit("docs-bot", gitURI, "contents:read"))
		flip(policy.OutcomeAutoApproved, policy.WouldReview, r.ID)
	}
	for range 2 { // refused before and now: unchanged
		if _, err := submit("triage-bot", gitURI, "contents:read", "secrets:read"); err == nil {
			t.Fatal("the example policy let triage read secrets")
		}
	}
	for range 2 { // a person approved release pushes; the candidate refuses them
		r := must(submit("release-bot", gitURI, "contents:write"))
		if _, err := svc.Approve(ctx, priya, r.ID); err != nil {
			t.Fatal(err)
		}
		flip(policy.OutcomeApproved, policy.WouldRefuse, r.ID)
	}
	// A person denied a pull request (unchanged: the candidate reviews it,
	// its shadow rule only logs); within the hour that denial makes the
	// candidate refuse release-bot's next request, which a person approved.
	r := must(submit("release-bot", gitURI, "pulls:write"))
	if _, err := svc.Deny(ctx, priya, r.ID, "not now"); err != nil {
		t.Fatal(err)
	}
	r = must(submit("release-bot", gitURI, "contents:read"))
	if _, err := svc.Approve(ctx, priya, r.ID); err != nil {
		t.Fatal(err)
	}
	flip(policy.OutcomeApproved, policy.WouldRefuse, r.ID)
	// An hour later the cool-down is over: approved then, reviewed now.
	clock.Advance(time.Hour)
	r = must(submit("release-bot", gitURI, "contents:read"))
	if _, err := svc.Approve(ctx, priya, r.ID); err != nil {
		t.Fatal(err)
	}
	// Left pending: the candidate would approve it without a person.
	r = must(submit("triage-bot", gitURI, "contents:read"))
	flip(policy.OutcomeUndecided, policy.WouldAutoApprove, r.ID)
	// Two people were needed; three would be.
	r = must(submit("rotator", vaultURI, "secrets:rotate"))
	flip(policy.OutcomeUndecided, "reviewed by 3 people", r.ID)

	rep, err := policy.Replay(ctx, mustParse(t, candidate), cfg, func(fn func(*broker.AuditEntry) error) error {
		return st.View(ctx, func(tx broker.TxReader) error { return tx.ForEachAudit(1, fn) })
	}, since)
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]string][]string{}
	for _, f := range rep.Flips {
		if f.Count != len(f.Requests) {
			t.Errorf("flip %s → %s counts %d for %d requests", f.From, f.To, f.Count, len(f.Requests))
		}
		got[[2]string{f.From, f.To}] = f.Requests
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flips\n%v\nwant\n%v", got, want)
	}
	rules := map[string][]string{}
	for _, f := range rep.Flips {
		rules[f.From+" → "+f.To] = f.Rules
	}
	wantRules := map[string][]string{
		"auto-approved → reviewed by a person":           {"docs-bot-reads-docs (no longer matches)"},
		"approved by a person → refused by policy":       {"no-release-pushes", "cool-down"},
		"reviewed, never decided → auto-approved":        {"triage-reads"},
		"reviewed, never decided → reviewed by 3 people": {"three-person-rotation"},
	}
	if !reflect.DeepEqual(rules, wantRules) {
		t.Errorf("rules %v\nwant %v", rules, wantRules)
	}
	if rep.Evaluated != 12 || rep.Unchanged != 12-8 || rep.ShadowHits != 1 {
		t.Errorf("evaluated %d, unchanged %d, shadow hits %d; want 12, 4, 1", rep.Evaluated, rep.Unchanged, rep.ShadowHits)
	}
	if s := rep.Summary(); !strings.Contains(s, "8 of 12 requests") || !strings.Contains(s, "3 auto-approved → reviewed by a person") {
		t.Errorf("summary %q", s)
	}

	// The live policy replayed over its own log changes nothing.
	same, err := policy.Replay(ctx, examplePolicy(t), cfg, func(fn func(*broker.AuditEntry) error) error {
		return st.View(ctx, func(tx broker.TxReader) error { return tx.ForEachAudit(1, fn) })
	}, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(same.Flips) != 0 {
		t.Fatalf("the live policy flips its own past: %+v", same.Flips)
	}
	if !slices.Equal([]int{same.Evaluated}, []int{12}) {
		t.Fatalf("evaluated %d", same.Evaluated)
	}
}
