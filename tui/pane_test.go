package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker"
)

// The detail pane wraps long lines instead of cutting them, and scrolls
// with shift+↑/↓ so every line can be read; no text appears twice and the
// pane says what is above and below.
func TestDetailPaneWrapsAndScrolls(t *testing.T) {
	long := "read the onboarding guide and then every page it links to, including the appendix on deploy keys and the one on rotating them"
	fx := newFixture()
	fx.pending = []*broker.TaskRequest{req("req-long-aaaaaaaa", "reader-bot", long, "https://api.github.com", 10, 5*time.Minute, "contents:read")}
	fx.pending[0].Policy.Trace = nil
	for i := range 20 {
		fx.pending[0].Policy.Trace = append(fx.pending[0].Policy.Trace, fmt.Sprintf("trace line %02d: a rule that is long enough to need wrapping at eighty columns for sure", i))
	}
	s := newSync(t, fx.backend(), Options{}, 80, 24)
	seen := map[string]int{}
	screens := []string{s.screen()}
	if !strings.Contains(screens[0], "lines below · shift+↓ scrolls") {
		t.Fatalf("no cue that the pane continues:\n%s", screens[0])
	}
	for range 30 {
		s.keys("shift+down")
		screens = append(screens, s.screen())
	}
	last := screens[len(screens)-1]
	if !strings.Contains(last, "trace line 19") || strings.Contains(last, "lines below") || !strings.Contains(last, "above · shift+↑") {
		t.Fatalf("scrolled to the end:\n%s", last)
	}
	for _, scr := range screens {
		for _, l := range strings.Split(ansi.Strip(scr), "\n") {
			if strings.Contains(l, "…") && strings.Contains(l, "trace line") {
				t.Fatalf("a detail line was cut:\n%s", scr)
			}
			for i := range 20 {
				if strings.Contains(l, fmt.Sprintf("trace line %02d:", i)) {
					seen[fmt.Sprintf("%02d", i)]++
				}
			}
		}
	}
	if len(seen) != 20 {
		t.Fatalf("scrolling showed %d of 20 trace lines", len(seen))
	}
	// Each wrapped line continues on the next: the rest of its text, not
	// a repeat of what was cut.
	ls := strings.Split(last, "\n")
	for i, l := range ls[:len(ls)-1] {
		if strings.Contains(l, "trace line") && (!strings.Contains(ls[i+1], "columns for sure") || strings.Contains(ls[i+1], "trace line")) {
			t.Fatalf("line %d does not continue on the next:\n%s", i, last)
		}
	}
	s.keys("down") // another selection... the only one: the scroll stays
	for range 30 {
		s.keys("shift+up")
	}
	if first := s.screen(); strings.Contains(first, "above · shift+↑") || !strings.Contains(first, "Intent") {
		t.Fatalf("scrolled back to the top:\n%s", first)
	}
}
