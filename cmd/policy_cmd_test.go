package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/config"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/store"
	"github.com/writhq/writ/store/storetest"
	"github.com/writhq/writ/tui"
)

// runPolicy runs one `writ policy` subcommand and returns what it wrote.
func runPolicy(t *testing.T, c *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&out)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheck(t *testing.T) {
	globals.configPath = "../testdata/writ.yaml"
	t.Cleanup(func() { globals.configPath = "" })
	for _, tt := range []struct {
		name, file string
		out, err   string
	}{
		{"the sample is clean", "../testdata/policy.yaml", "7 rules, type-checked, no findings", ""},
		{"a typo is an error naming the place", writeTemp(t, "typo.yaml", "rules:\n  - {name: r, when: 'request.scope == []', effect: {label: high}}\n"),
			"", `typo.yaml:2: rules[0] (r).when: column 8: request has no field "scope"`},
		{"findings exit non-zero", writeTemp(t, "lint.yaml", "rules:\n  - {name: off, when: 'false', effect: {label: high}}\n"),
			"rule off: when is always false", "policy check found problems: 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runPolicy(t, policyCheckCmd(), tt.file)
			if !strings.Contains(out, tt.out) {
				t.Errorf("output %q, want %q", out, tt.out)
			}
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestPolicyTestPrintsTheTrace(t *testing.T) {
	globals.configPath = "../testdata/writ.yaml"
	t.Cleanup(func() { globals.configPath = "" })
	sample := writeTemp(t, "req.json", `{"agent": {"id": "triage-bot"}, "scopes": ["contents:read", "secrets:read"],
		"resource": "https://git.acme.example", "ttl": "10m"}`)
	out, err := runPolicy(t, policyTestCmd(), "../testdata/policy.yaml", sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"risk: highest action risk is critical", "rule triage-never-reads-secrets → deny", "verdict: deny by rule triage-never-reads-secrets"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runPolicy(t, policyTestCmd(), "--json", "../testdata/policy.yaml", sample)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Result broker.PolicyResult }
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Result.Verdict != broker.VerdictDeny {
		t.Fatalf("json %q: %v", out, err)
	}
	bad := writeTemp(t, "bad.json", `{"agent": {"id": "triage-bot"}, "scope": ["x"]}`)
	if _, err := runPolicy(t, policyTestCmd(), "../testdata/policy.yaml", bad); err == nil || !strings.Contains(err.Error(), `unknown field "scope"`) {
		t.Fatalf("error %v", err)
	}
}

func TestPolicyReplayReadsAStoreCopy(t *testing.T) {
	globals.configPath = "../testdata/writ.yaml"
	db := filepath.Join(t.TempDir(), "writ.db")
	globals.dbPath = db
	t.Cleanup(func() { globals.configPath, globals.dbPath = "", "" })
	cfg, err := config.Load(globals.configPath)
	if err != nil {
		t.Fatal(err)
	}
	live, err := policy.Load("../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := broker.New(ctx, cfg, st, broker.Options{Issuer: "http://127.0.0.1:1", Policy: live})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "push the fix",
		Scopes: []string{"contents:write"}, Resource: "https://git.acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, broker.Operator{Issuer: "https://idp.example", Subject: "priya", Email: "priya@example.com", EmailVerified: true}, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	candidate := writeTemp(t, "candidate.yaml", "rules:\n  - {name: no-pushes, when: '\"contents:write\" in request.actions', effect: {deny: true}}\n")
	out, err := runPolicy(t, policyReplayCmd(), candidate, "--since", "1d")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"over 1 requests", "1  approved by a person → would be refused by policy", "rules: no-pushes", policy.RequestRef(r.ID)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, r.ID) {
		t.Errorf("the request id (the agent's auth_req_id) is printed in full:\n%s", out)
	}
	out, err = runPolicy(t, policyReplayCmd(), candidate, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep policy.ReplayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Changed() != 1 {
		t.Fatalf("json %q: %v", out, err)
	}
	if _, err := runPolicy(t, policyReplayCmd(), candidate, "--since", "a week"); err == nil {
		t.Fatal("a bad --since was accepted")
	}
	// A store a running writ holds: the error says to replay a copy.
	held, err := store.Open(db, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	wait := globals.lockWait
	globals.lockWait = 50 * time.Millisecond
	t.Cleanup(func() { globals.lockWait = wait })
	if _, err := runPolicy(t, policyReplayCmd(), candidate); err == nil || !strings.Contains(err.Error(), "replay a copy of the store with --db COPY") {
		t.Fatalf("replay of a held store: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"36h", now.Add(-36 * time.Hour)},
		{"2026-11-30T00:00:00Z", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
	} {
		if got, err := parseSince(tt.in, now); err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{"", "-1d", "d", "-2h", "yesterday"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

// The console's replay of a reloaded policy reads only the last day (and
// the day before it, for history) and sends one summary.
func TestSendPolicyReplayCoversTheLastDay(t *testing.T) {
	globals.configPath = "../testdata/writ.yaml"
	t.Cleanup(func() { globals.configPath = "" })
	cfg, err := config.Load(globals.configPath)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.MustOpen(t)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	svc, err := broker.New(ctx, cfg, st, broker.Options{Issuer: "http://127.0.0.1:1", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	submit := func() {
		if _, err := svc.Submit(ctx, "triage-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "label issues",
			Scopes: []string{"contents:read"}, Resource: "https://git.acme.example"}); err != nil {
			t.Fatal(err)
		}
	}
	submit() // three days before the replay: outside its window and its history
	now = now.Add(3 * 24 * time.Hour)
	submit()
	now = now.Add(time.Hour)
	submit()
	candidate := mustPolicy(t, "rules:\n  - {name: no-triage, when: 'agent.id == \"triage-bot\"', effect: {deny: true}}\n")
	var got []tea.Msg
	sendPolicyReplay(ctx, func(m tea.Msg) { got = append(got, m) }, &brokerEnv{Config: cfg, Store: st, Service: svc}, candidate)
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	msg, ok := got[0].(tui.PolicyReplayMsg)
	if !ok || msg.Err != nil || !strings.Contains(msg.Summary, "2 of 2 requests") ||
		!strings.Contains(msg.Summary, "2 reviewed, never decided → refused by policy") {
		t.Fatalf("message %+v", got[0])
	}
}

func mustPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("candidate.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
