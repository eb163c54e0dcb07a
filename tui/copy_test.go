package tui

import (
	"fmt"
	"strings"
	"testing"
)

func TestEscClosesHelp(t *testing.T) {
	s := newSync(t, newFixture().backend(), Options{}, 100, 30)
	s.keys("?")
	s.mustShow("previous page")
	s.keys("esc")
	if strings.Contains(s.screen(), "previous page") {
		t.Fatal("esc did not close the full help")
	}
}

func TestCopyIDPutsTheFullIDOnTheClipboard(t *testing.T) {
	fx := newFixture()
	s := newSync(t, fx.backend(), Options{}, 100, 30)
	for _, tc := range []struct {
		tab  string
		want func() string
	}{
		{"1", func() string { return s.m.pending.current().reqs[0].ID }},
		{"2", func() string { return s.m.grants.current().ID }},
		{"3", func() string { return s.m.agents.current().Agent.ID }},
	} {
		s.keys(tc.tab)
		want := tc.want()
		cmd := s.m.copyID()
		if cmd == nil {
			t.Fatalf("tab %s: nothing copied", tc.tab)
		}
		// tea.SetClipboard's message is the text itself, sent as OSC 52.
		if got := fmt.Sprint(cmd()); got != want {
			t.Errorf("tab %s: copied %q, want %q", tc.tab, got, want)
		}
		s.mustShow("to the clipboard")
	}
}

func TestNarrowHeaderKeepsTheStateFirst(t *testing.T) {
	s := newSync(t, newFixture().backend(), Options{Remote: true, APIAddr: "https://writ.example.com"}, 60, 20)
	s.m.a.session.Operator.Name = strings.Repeat("Very Long Operator Name ", 3)
	for _, tc := range []struct {
		frozen       bool
		disconnected string
		want         []string
	}{
		{false, "", []string{"LIVE"}},
		{true, "", []string{"FROZEN"}},
		{true, "server closed the stream", []string{"FROZEN", "DISCONNECTED"}},
	} {
		s.m.a.d.issuer.Frozen = tc.frozen
		s.m.a.disconnected = tc.disconnected
		h := s.m.header()
		for _, w := range tc.want {
			if !strings.Contains(h, w) {
				t.Errorf("a 60-column header lost %q: %q", w, h)
			}
		}
		if displayWidth(h) > 60 {
			t.Errorf("header %d cells wide: %q", displayWidth(h), h)
		}
	}
}
