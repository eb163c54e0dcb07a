package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker"
)

// The narrow dialog's "detail N requested → granted" line is wrapped to
// the dialog's own width with a hanging indent: at every screen width no
// line is cut ("…") and then wrapped again by the frame, so no text shows
// twice and none is lost.
func TestNarrowDiffLineWraps(t *testing.T) {
	acts := []string{"contents:read", "contents:write", "pull_requests:write", "issues:write", "statuses:write", "deployments:write"}
	r := req("req-wide-aaaaaaaa", "release-bot", "tidy the repository", "https://api.github.com", 10*time.Second, time.Hour, acts...)
	r.Terms.Details = []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Identifier: "acme/web", Actions: acts,
		Locations: []string{"https://api.github.com/repos/acme/web"}}}
	for _, w := range []int{80, 100, 120, 160, 200} {
		s := newSync(t, newFixture().backend(), Options{}, w, 48)
		a := s.m.a
		n := newNarrowDialog(a, priya, r)
		n.items[2*len(acts)-1].on = false // drop the last detail action: the line differs and is long
		lines := n.diff(a, dialogWidth(w))
		var joined []string
		for _, l := range lines {
			plain := ansi.Strip(l)
			if ansi.StringWidth(plain) > dialogWidth(w) {
				t.Errorf("%d cols: diff line wider than the dialog: %q", w, plain)
			}
			if strings.Contains(plain, "…") {
				t.Errorf("%d cols: diff line cut: %q", w, plain)
			}
			joined = append(joined, strings.TrimSpace(plain))
		}
		text := strings.Join(joined, " ")
		want := "detail 1 " + strings.Join(acts, ", ") + " → " + strings.Join(acts[:len(acts)-1], ", ")
		if !strings.Contains(text, want) {
			t.Errorf("%d cols: the diff reads\n%s\nwant it to contain\n%s", w, text, want)
		}
		// The frame does not wrap the body again: every framed line is
		// as wide as the frame.
		view := strings.Split(ansi.Strip(n.view(a, w)), "\n")
		for _, l := range view {
			if ansi.StringWidth(l) != ansi.StringWidth(view[0]) {
				t.Errorf("%d cols: the frame wrapped a line: %q", w, l)
			}
		}
	}
}
