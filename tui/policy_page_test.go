package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker"
)

func TestPolicyPageView(t *testing.T) {
	fx := newFixture()
	s := newSync(t, fx.backend(), Options{}, 160, 40)
	p := newPolicyPage(s.m.a)
	p.setSize(160, 20)
	if v := ansi.Strip(p.view()); !strings.Contains(v, "no policy file: every request goes to an operator") ||
		!strings.Contains(v, "none yet: a replay runs when the policy file reloads") {
		t.Fatalf("empty page:\n%s", v)
	}
	now := s.m.a.now
	p.onPolicy(PolicyMsg{File: "policy.yaml", Rules: 7}, now.Add(-3*time.Minute))
	p.onPolicy(PolicyMsg{File: "policy.yaml", Err: errors.New("policy.yaml:4: bad\x1b]0;pwned\x07")}, now)
	p.onReplay(PolicyReplayMsg{Summary: "replay: 2 of 9 requests since Mar 13 09:20 would change: 2 auto-approved → reviewed by a person"})
	standing := []*broker.StandingApproval{
		{ID: "sa-1", AgentID: "docs-bot", Terms: broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com"},
			CreatedBy: priya, ExpiresAt: now.Add(25*time.Minute + 3*time.Second), Uses: []broker.StandingUse{{RequestID: "r1"}, {RequestID: "r2"}}},
		{ID: "sa-0", AgentID: "reader-bot", Terms: broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com"},
			CreatedBy: priya, ExpiresAt: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)},
	}
	p.onStatus(PolicyStatusMsg{ShadowHits: map[string]uint64{"no-workflow-edits-without-a-pr": 3}, Standing: standing, At: now})
	v := ansi.Strip(p.view())
	for _, want := range []string{
		"policy.yaml · 7 rules · loaded 3m ago",
		"NOT RELOADED: policy.yaml:4: bad",
		"no-workflow-edits-without-a-pr           3 hits",
		"ACTIVE   25:03 left    2 uses  docs-bot  contents:read on https://api.github.com · by Priya Raman <priya@example.com> · sa-1",
		"REVOKED  -             0 uses  reader-bot  contents:read on https://api.github.com",
		"2 of 9 requests since Mar 13 09:20 would change",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("page lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "pwned\x07") || strings.Contains(p.view(), "\x1b]0;") {
		t.Errorf("an escape sequence reached the page:\n%q", v)
	}
	if n := strings.Count(p.view(), "\n") + 1; n != 20 {
		t.Errorf("%d lines for a height of 20", n)
	}
}
