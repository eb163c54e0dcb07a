package cmd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmuxSession drives a program in a detached tmux session, as an operator
// at a terminal would.
type tmuxSession struct {
	t    *testing.T
	name string
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", s.name) }

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	s.run(append([]string{"send-keys", "-t", s.name}, keys...)...)
	time.Sleep(300 * time.Millisecond) // let the console draw before the next look
}

// waitFor polls the screen until match finds something, or fails after a
// generous deadline (a hang guard, not a timing assertion).
func (s *tmuxSession) waitFor(what string, match func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		sc := s.screen()
		if match(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s; the screen shows:\n%s", what, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

// TestDemoInTmux builds writ, runs `writ demo` in tmux, narrows and
// approves the first request with keystrokes, sees the grant, presses ! !,
// and checks that the demo resource server refuses the agent's next call.
func TestDemoInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end console test needs it (.ci/run installs it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "writ")
	if err := os.Mkdir(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin, "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build writ: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	s := &tmuxSession{t: t, name: fmt.Sprintf("writ-e2e-%d", os.Getpid())}
	cmdline := fmt.Sprintf("env XDG_STATE_HOME=%s XDG_CONFIG_HOME=%s %s demo --instant-sign-in --pace 30s --step 3s", state, dir, bin)
	s.run("new-session", "-d", "-s", s.name, "-x", "160", "-y", "48", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.name).Run() })

	s.waitFor("the demo operator to be signed in", contains("Dana Demo"))
	// The demo makes the analyst's weekly query standing once Dana signs
	// in; the Policy page lists it with its shadow rule section.
	s.keys("5")
	s.waitFor("the demo's standing approval on the Policy page", regexp.MustCompile(`ACTIVE .*analyst +tables:read on \S+ · by Dana Demo`).MatchString)
	s.keys("1")
	s.waitFor("release-bot's request", regexp.MustCompile(`▸ .*release-bot`).MatchString)

	// Narrow: drop pulls:write (the third scope), shorten the TTL, grant.
	s.keys("n")
	s.waitFor("the narrow editor", contains("pulls:write"))
	s.keys("Down", "Down", "Space")
	s.keys("Enter")
	s.keys("Tab")
	grants := s.waitFor("the grant on the Grants page", regexp.MustCompile(`ACTIVE +release-bot`).MatchString)
	if strings.Contains(grants, "pulls:write  Open") {
		t.Errorf("narrowed-away scope still granted:\n%s", grants)
	}
	// The agent uses its token at least once before the emergency.
	s.waitFor("a use of the grant", regexp.MustCompile(`ACTIVE +release-bot +\S+ +1×`).MatchString)

	s.keys("!")
	s.waitFor("the armed emergency panel", contains("stop issuing"))
	s.keys("!")
	s.waitFor("the FROZEN banner", contains("FROZEN"))

	// The agent's next call is refused by the guarded resource server,
	// whose guard reports the refusal: the row says how the grant ended
	// (revoke-all) and counts it. (The demo keeps its log in its own
	// sealed directory, so the screen is the evidence.)
	s.waitFor("the refusal counted on the revoked grant", regexp.MustCompile(`REVOKED +release-bot +revoked \(all\) .* [1-9]\d* refused · 0 accepted`).MatchString)
	// Nothing of the demo reached the real state directory.
	if _, err := os.Stat(filepath.Join(state, "writ", "last-operator.json")); err == nil {
		t.Error("the demo wrote its operator to the real state directory")
	}
	// The embedded console asks before q stops the agent API.
	s.keys("q")
	s.waitFor("the quit question", contains("Quit writ?"))
	s.keys("y")
}
