package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

func TestBurstIsOneRowAndDeniesTogether(t *testing.T) {
	fx := newFixture()
	b := fx.backend()
	s := newSync(t, b, Options{}, 100, 30)
	s.mustShow("⚠ BURST ×4: read docs page 10")
	if n := strings.Count(s.screen(), "read docs page"); n != 1 {
		t.Fatalf("burst shown %d times, want folded into one row:\n%s", n, s.screen())
	}
	s.keys("down", "down", "down", "a")
	s.mustShow("a burst of 4 near-identical requests")
	if len(b.Calls()) != 0 {
		t.Fatalf("approving a folded burst reached the broker: %v", b.Calls())
	}
	s.keys("d", "enter")
	if calls := b.Calls(); len(calls) != 4 || !strings.HasPrefix(calls[0], "deny req-burst-0") {
		t.Fatalf("calls = %v, want four denials", calls)
	}
	for _, c := range b.Calls() {
		if !strings.HasSuffix(c, ": "+denyPresets[0]) {
			t.Fatalf("a burst denial without the reason: %q", c)
		}
	}
	// The bulk denial says why, as each request's audit entry does.
	s.mustShow("denied 4 requests from reader-bot: " + denyPresets[0])
	if strings.Contains(s.screen(), "BURST") {
		t.Fatalf("denied burst still shown:\n%s", s.screen())
	}
}

func TestBurstExpandsToDecideOne(t *testing.T) {
	fx := newFixture()
	b := fx.backend()
	s := newSync(t, b, Options{}, 100, 30)
	s.keys("down", "down", "down", "enter", "a") // expanding selects the first member
	if calls := b.Calls(); len(calls) != 1 || !strings.HasPrefix(calls[0], "approve req-burst-0") {
		t.Fatalf("calls = %v, want the first burst member approved", calls)
	}
}

func TestAgentTextIsNeutralised(t *testing.T) {
	s := newSync(t, newFixture().backend(), Options{}, 160, 48)
	s.keys("G")
	scr := s.m.render()
	if strings.Contains(scr, "\x1b[31mto finish") {
		t.Fatal("an agent's escape sequence reached the terminal")
	}
	s.mustShow("read secrets ␛[31mto finish the PR␛[0m")
}

func TestFrozenRefusesApprovals(t *testing.T) {
	fx := newFixture()
	fx.issuer.Frozen = true
	b := fx.backend()
	s := newSync(t, b, Options{}, 100, 30)
	s.keys("a")
	s.mustShow("issuance is FROZEN")
	s.keys("n")
	if len(b.Calls()) != 0 || len(s.m.a.dialogs) != 0 {
		t.Fatalf("frozen console opened a decision: %v", b.Calls())
	}
}

func TestDialogClosedByAnotherOperator(t *testing.T) {
	fx := newFixture()
	s := newSync(t, fx.backend(), Options{}, 100, 30)
	s.keys("n")
	s.mustShow("Narrow and grant")
	r := *fx.pending[0]
	r.State = broker.RequestApproved
	bob := broker.Operator{Subject: "bob", Name: "Bob"}
	s.send(eventsMsg{events: []broker.Event{{Kind: broker.EventRequestDecided, Request: &r,
		Decision: &broker.Decision{Kind: broker.DecisionNarrow, Operator: bob}}}})
	s.mustShow("was narrowed and approved by Bob while you were deciding")
	if strings.Contains(s.screen(), "Narrow and grant") {
		t.Fatal("the narrow editor stayed open on a decided request")
	}
}

func TestMouseSelectsAndScrolls(t *testing.T) {
	s := newSync(t, newFixture().backend(), Options{Mouse: true}, 100, 30)
	// Row 0 header, row 1 tabs, row 2 column header, row 3 the first request.
	s.send(tea.MouseClickMsg{X: 10, Y: 5, Button: tea.MouseLeft})
	s.mustShow("▸ 50s  support-bot")
	s.send(tea.MouseWheelMsg{X: 10, Y: 5, Button: tea.MouseWheelDown})
	s.mustShow("▸ 20s  release-bot")
	s.send(tea.MouseClickMsg{X: 15, Y: 1, Button: tea.MouseLeft})
	s.mustShow("[Grants 2]")
}

func TestHelpTogglesAndResizeKeepsIt(t *testing.T) {
	s := newSync(t, newFixture().backend(), Options{}, 100, 30)
	s.keys("?")
	s.mustShow("shift+tab", "previous page")
	s.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	s.mustShow("previous page")
	s.keys("?")
	if strings.Contains(s.screen(), "previous page") {
		t.Fatal("? did not close the full help")
	}
}
