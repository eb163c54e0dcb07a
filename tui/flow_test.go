package tui

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/writhq/writ/broker"
)

var _ Backend = (*broker.Service)(nil)

// Priya's 09:05: approve a low-risk request as asked.
func TestFlowApprove(t *testing.T) {
	svc, c := realBroker(t)
	submit(t, svc, "reader-bot", "read the onboarding guide", "https://api.github.com", 5*time.Minute, "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("read the onboarding guide", "[LOW]")
	f.keys("a")
	f.waitShow("approved reader-bot's request as asked")
	gs, err := svc.Grants(context.Background(), 0)
	if err != nil || len(gs) != 1 || gs[0].AgentID != "reader-bot" {
		t.Fatalf("grants after approve = %v, %v; want one for reader-bot", gs, err)
	}
	f.keys("2")
	f.waitShow("ACTIVE", "5:00")
}

// A high-risk approval asks first, and anything but y cancels.
func TestFlowApproveHighRiskConfirms(t *testing.T) {
	svc, c := realBroker(t)
	submit(t, svc, "release-bot", "push the release tag", "https://api.github.com", 15*time.Minute, "contents:write")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("push the release tag")
	f.keys("a")
	f.waitShow("Approve HIGH risk as asked?")
	f.keys("n") // not y: cancels
	f.waitGone("Approve HIGH risk")
	if gs, _ := svc.Grants(context.Background(), 0); len(gs) != 0 {
		t.Fatalf("a cancelled confirmation granted %d", len(gs))
	}
	f.keys("a")
	f.waitShow("Approve HIGH risk as asked?")
	f.keys("y")
	f.waitShow("approved release-bot's request as asked")
}

// Priya's 09:05: narrow away workflows:write, cut the TTL, grant.
func TestFlowNarrow(t *testing.T) {
	svc, c := realBroker(t)
	submit(t, svc, "release-bot", "open PR fixing CVE-2026-1234", "https://api.github.com", time.Hour,
		"contents:write", "workflows:write")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("open PR fixing CVE-2026-1234")
	f.keys("n")
	f.waitShow("Narrow and grant", "[x] scope  [CRIT] workflows:write")
	f.keys("down", "space")
	f.waitShow("- workflows:write")
	f.keys("down", "left", "left", "left") // TTL 1h → 45m → 30m → 15m
	f.waitShow("TTL      1h → 15m")
	f.keys("enter")
	f.waitShow("narrowed and approved release-bot's request")
	gs, _ := svc.Grants(context.Background(), 0)
	if len(gs) != 1 {
		t.Fatalf("grants = %d, want 1", len(gs))
	}
	g := gs[0]
	if !slices.Equal(g.Terms.Scopes, []string{"contents:write"}) || g.Terms.TTL != 15*time.Minute {
		t.Fatalf("granted %v for %s; want [contents:write] for 15m", g.Terms.Scopes, g.Terms.TTL)
	}
}

// Priya's 09:20: deny a follow-on with a typed reason.
func TestFlowDenyWithReason(t *testing.T) {
	svc, c := realBroker(t)
	r := submit(t, svc, "release-bot", "read secrets to finish the PR", "https://api.github.com", 15*time.Minute, "secrets:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("read secrets to finish the PR")
	f.keys("d")
	f.waitShow("Deny request", "Reason:")
	f.typeText("not what the task was about!") // `!` types, it does not arm
	f.waitShow("Reason: not what the task was about!")
	f.keys("enter")
	f.waitShow("denied 1 request from release-bot")
	got, _ := svc.Request(context.Background(), r.ID)
	if got.State != broker.RequestDenied {
		t.Fatalf("request state = %s, want denied", got.State)
	}
	d, _ := svc.Decision(context.Background(), got.DecisionID)
	if d.Reason != "not what the task was about!" {
		t.Fatalf("reason = %q", d.Reason)
	}
	// The agent's next request recalls the denial in its history.
	submit(t, svc, "release-bot", "read secrets again", "https://api.github.com", 15*time.Minute, "secrets:read")
	f.waitShow("read secrets again", "recently: denied", "(not what the task was about!)")
}

// Revoke one grant with a preset reason; it stays visible with its report.
func TestFlowRevoke(t *testing.T) {
	svc, c := realBroker(t)
	g := approved(t, svc, "reader-bot", "read the onboarding guide", "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("Grants 1")
	f.keys("2")
	f.waitShow("ACTIVE", "read the onboarding guide")
	f.keys("r")
	f.waitShow("Revoke grant")
	f.keys("enter") // the first preset
	f.waitShow("revoked grant", "REVOKED", "revoked 0s ago · 0 refused · 0 accepted")
	got, _ := svc.Grant(context.Background(), g.ID)
	if got.State != broker.GrantRevoked || got.EndReason != "task finished early" {
		t.Fatalf("grant = %s (%q), want revoked with the preset reason", got.State, got.EndReason)
	}
}

// R on a grant revokes everything its agent holds.
func TestFlowRevokeAgent(t *testing.T) {
	svc, c := realBroker(t)
	approved(t, svc, "release-bot", "open PR", "contents:write")
	c.Advance(time.Second)
	approved(t, svc, "release-bot", "open another PR", "pull_requests:write")
	c.Advance(time.Second)
	approved(t, svc, "reader-bot", "read docs", "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("Grants 3")
	f.keys("2", "G") // the oldest: release-bot's first
	f.keys("R")
	f.waitShow("Revoke everything release-bot holds", "Revoke all 2 active grants")
	f.typeText("host compromised")
	f.keys("enter")
	f.waitShow("revoked everything release-bot holds", "Grants 1")
	for _, g := range mustGrants(t, svc) {
		want := broker.GrantActive
		if g.AgentID == "release-bot" {
			want = broker.GrantRevoked
		}
		if st := svc.EffectiveState(g); st != want {
			t.Errorf("%s's grant is %s, want %s", g.AgentID, st, want)
		}
	}
}

func mustGrants(t *testing.T, svc *broker.Service) []*broker.Grant {
	t.Helper()
	gs, err := svc.Grants(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// Priya's 14:13: `!` from any screen arms, `!` fires; FROZEN until U, y.
func TestFlowEmergencyAndUnfreeze(t *testing.T) {
	svc, c := realBroker(t)
	approved(t, svc, "release-bot", "open PR", "contents:write")
	approved(t, svc, "reader-bot", "read docs", "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("Grants 2")
	f.keys("3", "!")
	f.waitShow("EMERGENCY", "revoke 2 grants of 2 agents and stop issuing")
	f.keys("x") // any other key cancels
	f.waitShow("cancelled: nothing was revoked")
	if svc.IssuerState().Frozen {
		t.Fatal("a cancelled emergency froze issuance")
	}
	f.keys("!", "!")
	f.waitShow("FROZEN", "EVERY grant revoked")
	if st := svc.IssuerState(); !st.Frozen || st.Epoch == 0 {
		t.Fatalf("issuer = %+v, want frozen with a new epoch", st)
	}
	for _, g := range mustGrants(t, svc) {
		if st := svc.EffectiveState(g); st != broker.GrantRevoked {
			t.Errorf("grant %s is %s after revoke-all", g.ID, st)
		}
	}
	f.keys("U")
	f.waitShow("Unfreeze issuance?")
	f.keys("y")
	f.waitShow("issuance is LIVE again", "● LIVE")
	if svc.IssuerState().Frozen {
		t.Fatal("still frozen after unfreeze")
	}
}

// Revocation works without a live session, under the last operator.
func TestFlowEmergencyWithoutSession(t *testing.T) {
	svc, c := realBroker(t)
	approved(t, svc, "reader-bot", "read docs", "contents:read")
	expired := &Session{Operator: priya, Expires: c.Now().Add(-time.Minute)}
	f := startFlow(t, svc, Options{Now: c.Now, Session: expired}, 100, 30)
	f.waitShow("Session expired", "Grants 1")
	f.keys("!")
	f.waitShow("last signed-in operator")
	f.keys("!")
	f.waitShow("FROZEN")
	es, _ := svc.Audit(context.Background(), broker.AuditFilter{Kinds: []broker.AuditKind{broker.AuditAllRevoked}})
	if len(es) != 1 || es[0].Operator == nil || es[0].Operator.Subject != "priya" {
		t.Fatalf("revoke-all audit = %+v, want one entry under priya", es)
	}
}

// `/` filters the queue; esc clears it.
func TestFlowFilter(t *testing.T) {
	f := startFlow(t, newFixture().backend(), Options{Now: func() time.Time { return fixedNow }, Session: &Session{Operator: priya}}, 100, 30)
	f.waitShow("refund order #4411")
	f.keys("/")
	f.typeText("refund")
	f.waitShow("1 of 8 pending match")
	scr := f.waitGone("open PR fixing CVE")
	if !strings.Contains(scr, "refund order #4411") {
		t.Fatalf("filter hid the match:\n%s", scr)
	}
	f.keys("enter", "esc")
	f.waitShow("open PR fixing CVE", "refund order #4411")
}

// Resizing keeps the page, the cursor and the filter.
func TestFlowResize(t *testing.T) {
	f := startFlow(t, newFixture().backend(), Options{Now: func() time.Time { return fixedNow }, Session: &Session{Operator: priya}}, 80, 24)
	f.waitShow("refund order")
	f.keys("down", "down")
	f.waitShow("▸ 50s  support-bot")
	f.tm.Send(tea.WindowSizeMsg{Width: 40, Height: 10})
	f.waitShow("terminal too small")
	f.tm.Send(tea.WindowSizeMsg{Width: 160, Height: 48})
	f.waitShow("▸ 50s  support-bot", "│ Intent", "look up customer 88 for ticket 5120")
	f.tm.Send(tea.WindowSizeMsg{Width: 80, Height: 24})
	f.waitShow("▸ 50s  support-bot", "─ detail")
}

// The session expires on the clock: approvals pause, L signs in again and
// the queue is where it was.
func TestFlowSessionExpiry(t *testing.T) {
	c := &clock{t: fixedNow}
	fx := newFixture()
	b := fx.backend()
	var signIn *fakeSignIn
	opts := Options{Now: c.Now, Session: &Session{Operator: priya, Expires: fixedNow.Add(time.Minute)},
		SignIn: func() SignInScreen { signIn = &fakeSignIn{}; return signIn }}
	f := startFlow(t, b, opts, 100, 30)
	f.waitShow("session 1m", "refund order")
	f.keys("down")
	f.waitShow("▸ 1m   support-bot")
	c.Advance(2 * time.Minute)
	f.tm.Send(tickMsg(c.Now()))
	f.waitShow("Session expired: approvals paused · press L to sign in again")
	f.keys("a")
	f.waitShow("✗ session expired")
	if calls := b.Calls(); len(calls) != 0 {
		t.Fatalf("approve reached the broker without a session: %v", calls)
	}
	f.keys("L")
	f.waitShow("Sign in to approve")
	f.tm.Send(signInDone{})
	f.waitShow("signed in as Priya Raman", "▸ 3m   support-bot")
	f.keys("a")
	f.waitShow("Approve HIGH risk as asked?")
}

// A decision that loses to the deadline says so.
func TestFlowDecisionRacesDeadline(t *testing.T) {
	svc, c := realBroker(t)
	submit(t, svc, "reader-bot", "read docs", "https://api.github.com", 5*time.Minute, "contents:read")
	f := startFlow(t, svc, Options{Now: c.Now, Session: &Session{Operator: priya, Expires: fixedNow.Add(time.Hour)}}, 100, 30)
	f.waitShow("read docs")
	c.Advance(11 * time.Minute) // past the 10-minute review deadline, before the expiry sweep
	f.keys("a")
	f.waitShow("too late: request", "passed its review deadline")
	f.waitShow("Pending 0")
}

// A decision that loses to another operator says who won.
func TestFlowDecisionRacesOperator(t *testing.T) {
	svc, c := realBroker(t)
	r := submit(t, svc, "support-bot", "refund order 4411", "https://payments.internal", 5*time.Minute, "refunds:create")
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 100, 30)
	f.waitShow("refund order 4411")
	f.keys("d")
	f.waitShow("Deny request")
	bob := broker.Operator{Issuer: "https://idp.example.com", Subject: "bob", Name: "Bob"}
	if _, err := svc.Approve(context.Background(), bob, r.ID); err != nil {
		t.Fatal(err)
	}
	f.waitShow("was approved by Bob while you were deciding")
	f.waitGone("Deny request")
}

// An arrival while the terminal is unfocused sends a notification and
// counts in the window title.
func TestFlowArrivalUnfocused(t *testing.T) {
	svc, c := realBroker(t)
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c), Notify: NotifyOSC9}, 100, 30)
	f.waitShow("No requests waiting")
	f.tm.Send(tea.BlurMsg{})
	submit(t, svc, "reader-bot", "read docs", "https://api.github.com", 5*time.Minute, "contents:read")
	f.waitShow("NEW read docs", "Pending 1")
	teatest.WaitFor(t, f.tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("\x1b]9;writ: reader-bot asks for approval\x07")) &&
			bytes.Contains(b, []byte("(1) writ"))
	}, teatest.WithDuration(guard))
}
