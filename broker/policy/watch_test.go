package policy_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/policy"
)

const (
	denyAll  = "rules:\n  - {name: deny-all, when: 'true', effect: {deny: true, reason: closed}}\n"
	labelAll = "rules:\n  - {name: label-all, when: 'true', effect: {label: critical}}\n"
	badCEL   = "rules:\n  - {name: broken, when: 'request.agent ==', effect: {deny: true}}\n"
)

// changes records what a Watcher reported.
type changes struct {
	mu   sync.Mutex
	errs []error
	seen [][]string // rules of the policy reported each time
}

func (c *changes) on(p *policy.Policy, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
	c.seen = append(c.seen, p.Rules())
}

func (c *changes) last() (error, []string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) == 0 {
		return nil, nil, 0
	}
	return c.errs[len(c.errs)-1], c.seen[len(c.seen)-1], len(c.errs)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestWatcherReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, denyAll)
	var ch changes
	w, err := policy.NewWatcher(path, policy.WatchOptions{OnChange: ch.on, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	verdict := func() string {
		return w.Evaluate(context.Background(), input("a", time.Hour, "contents:read")).Verdict
	}
	steps := []struct {
		name     string
		write    func()
		reloaded bool
		rules    []string
		err      string // what Err says; "" for nil
		verdict  string
		reports  int // OnChange calls so far
	}{
		{"unchanged", func() {}, false, []string{"deny-all"}, "", broker.VerdictDeny, 0},
		{"touched, same content", func() { writeFile(t, path, denyAll) }, false, []string{"deny-all"}, "", broker.VerdictDeny, 0},
		{"a bad file keeps the last good policy", func() { writeFile(t, path, badCEL) }, false, []string{"deny-all"},
			"policy.yaml:2: rules[0] (broken).when: column 17: Syntax error", broker.VerdictDeny, 1},
		{"still bad: reported once", func() {}, false, []string{"deny-all"}, "Syntax error", broker.VerdictDeny, 1},
		{"a good file is picked up", func() { writeFile(t, path, labelAll) }, true, []string{"label-all"}, "", broker.VerdictReview, 2},
		{"a missing file keeps it too", func() { os.Remove(path) }, false, []string{"label-all"}, "no such file", broker.VerdictReview, 3},
		{"still missing: reported once", func() {}, false, []string{"label-all"}, "no such file", broker.VerdictReview, 3},
		{"back, same content", func() { writeFile(t, path, labelAll) }, true, []string{"label-all"}, "", broker.VerdictReview, 4},
		{"an empty file is a policy with no rules", func() { writeFile(t, path, "") }, true, []string{}, "", broker.VerdictReview, 5},
	}
	for _, s := range steps {
		s.write()
		if got := w.Check(); got != s.reloaded {
			t.Errorf("%s: Check() = %v, want %v", s.name, got, s.reloaded)
		}
		if got := w.Policy().Rules(); !slices.Equal(got, s.rules) {
			t.Errorf("%s: rules in force %v, want %v", s.name, got, s.rules)
		}
		switch err := w.Err(); {
		case s.err == "" && err != nil:
			t.Errorf("%s: Err() = %v", s.name, err)
		case s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)):
			t.Errorf("%s: Err() = %v, want %q", s.name, err, s.err)
		}
		if got := verdict(); got != s.verdict {
			t.Errorf("%s: verdict %s, want %s", s.name, got, s.verdict)
		}
		err, rules, n := ch.last()
		if n != s.reports {
			t.Errorf("%s: %d reports, want %d", s.name, n, s.reports)
			continue
		}
		if n > 0 && !slices.Equal(rules, s.rules) {
			t.Errorf("%s: reported policy %v, want the one in force %v", s.name, rules, s.rules)
		}
		if n > 0 && (err == nil) != (s.err == "") {
			t.Errorf("%s: reported error %v", s.name, err)
		}
	}
}

func TestWatcherNeedsAGoodFileToStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, badCEL)
	if _, err := policy.NewWatcher(bad, policy.WatchOptions{Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "bad.yaml:2") {
		t.Errorf("bad file: %v", err)
	}
	if _, err := policy.NewWatcher(filepath.Join(dir, "missing.yaml"), policy.WatchOptions{Logger: quiet()}); err == nil {
		t.Error("missing file: no error")
	}
}

// TestWatcherRunStopsWithItsContext: Run polls until its context ends and
// then returns, leaving no goroutine behind.
func TestWatcherRunStopsWithItsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, denyAll)
	reloaded := make(chan error, 10)
	w, err := policy.NewWatcher(path, policy.WatchOptions{Interval: 10 * time.Millisecond, Logger: quiet(),
		OnChange: func(_ *policy.Policy, err error) { reloaded <- err }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	writeFile(t, path, labelAll)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not pick up the changed file")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended: the goroutine leaks")
	}
}
