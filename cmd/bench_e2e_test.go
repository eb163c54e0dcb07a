package cmd

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/writhq/writ/store"
)

// TestBenchEndToEnd runs the real binary: `writ bench` starts `writ
// serve` as a child, drives every phase briefly with small sizes, and
// prints a JSON summary with the server's CPU and memory read from /proc;
// then, killed with SIGKILL in the middle of a run, it leaves no server
// behind (the kernel stops the child with its parent).
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds writ and runs writ bench")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("writ bench reads the server's CPU and memory from /proc")
	}
	bin := buildWrit(t)

	t.Run("every phase", func(t *testing.T) {
		c := exec.Command(bin, "bench", "--phases", "all", "--duration", "1s", "--clients", "4", "--grants", "300",
			"--audit-entries", "3000", "--revokes", "3", "--starts", "1", "--guards", "6", "--guard-procs", "2", "--rounds", "2", "--json")
		c.Env = append(childEnv(), "TMPDIR="+t.TempDir())
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("writ bench: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var sum benchSummary
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, out)
		}
		if len(sum.Load) != 4 || !slices.ContainsFunc(sum.Load, func(r loadResult) bool { return r.Phase == phaseCycleOperator }) {
			t.Fatalf("%d load results, want cycle, cycle-operator, introspect, introspect-assert: %s", len(sum.Load), out)
		}
		for _, r := range sum.Load {
			if r.Target != "writ" || r.Count == 0 || r.Errors != 0 || r.P99ms <= 0 || r.ServerCPUusPerOp <= 0 || r.ServerPeakRSS <= 0 {
				t.Errorf("%s: %+v", r.Phase, r)
			}
		}
		if m := sum.Memory; m == nil || m.Grants != 300 || m.Cycles == 0 || m.PeakRSS < m.RSSAfterStart || m.StoreBytes == 0 ||
			m.FileAfterStart <= 0 || m.FileAfterStart > m.RSSAfterStart || m.FileAfterLoad <= 0 ||
			m.Store == nil || m.Store.FileBytes < m.StoreBytes || !slices.ContainsFunc(m.Store.Buckets, func(b store.BucketUsage) bool { return b.Name == "grants" && b.Keys >= 300 }) {
			t.Errorf("memory: %+v", sum.Memory)
		}
		if r := sum.Revoke; r == nil || r.WithGrants.Calls != 3 || r.WithGrants.Grants != 300 || r.Empty.Calls != 3 || r.WithGrants.P50ms <= 0 ||
			r.HTTPWithGrants.Calls != 3 || r.HTTPWithGrants.Grants != 300 || r.HTTPEmpty.Calls != 3 || r.HTTPWithGrants.P50ms <= 0 || r.HTTPEmpty.P50ms <= 0 {
			t.Errorf("revoke-all: %+v", sum.Revoke)
		}
		if s := sum.Startup; s == nil || s.WithAudit.AuditEntries != 3000 || len(s.WithAudit.Starts) != 1 || s.WithAudit.Medianms <= 0 || len(s.Empty.Starts) != 1 {
			t.Errorf("startup: %+v", sum.Startup)
		}
		if g := sum.Guards; g == nil || g.Guards != 6 || g.Processes != 2 || g.Rounds != 2 || g.P50ms <= 0 || g.P90ms < g.P50ms ||
			g.ServerCPUms < 0 || g.GuardCPUms < 0 {
			t.Errorf("revoke-guards: %+v", sum.Guards)
		}
		if sum.Machine.CPUs <= 0 || sum.Machine.Go == "" || sum.Seeded.Grants != 300 || sum.Seeded.AuditEntries != 3000 {
			t.Errorf("machine %+v, seeded %+v", sum.Machine, sum.Seeded)
		}
	})

	t.Run("a server started by hand", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "setup")
		if out, err := exec.Command(bin, "bench", "--prepare", dir, "--agents", "400").CombinedOutput(); err != nil {
			t.Fatalf("writ bench --prepare: %v\n%s", err, out)
		}
		if fi, err := os.Stat(filepath.Join(dir, "keys.json")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("keys file: %v %v", fi, err)
		}
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		serve := exec.Command(bin, "serve", "--config", filepath.Join(dir, "writ.yaml"), "--policy", filepath.Join(dir, "policy.yaml"),
			"--db", filepath.Join(dir, "writ.db"), "--listen", addr, "--dev-oidc", "dana")
		serve.Env = childEnv()
		child, err := startChild(t.Context(), "writ serve", serve, "http://"+addr, "http://"+addr+"/healthz", filepath.Join(dir, "serve.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = child.stop() })
		c := exec.Command(bin, "bench", "--server", "http://"+addr, "--setup", dir, "--server-pid", strconv.Itoa(child.pid()),
			"--phases", "cycle,cycle-operator,introspect-assert", "--duration", "1s", "--clients", "4", "--operators", "3", "--json")
		c.Env = childEnv()
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("writ bench --server: %v\n%s%s", err, ee.Stderr, child.logTail())
			}
			t.Fatal(err)
		}
		var sum benchSummary
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, out)
		}
		if len(sum.Load) != 3 || sum.Settings.Server != "http://"+addr {
			t.Fatalf("summary: %s", out)
		}
		for _, r := range sum.Load {
			if r.Count == 0 || r.Errors != 0 || r.ServerCPUusPerOp <= 0 {
				t.Errorf("%s: %+v", r.Phase, r)
			}
		}
	})

	t.Run("compare with oidc-provider", func(t *testing.T) {
		oidcDir, err := filepath.Abs("../.ci/oidc")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath("node"); err != nil {
			t.Skip("node is not installed (.ci/run installs oidc-provider for CI)")
		}
		if _, err := os.Stat(filepath.Join(oidcDir, "node_modules", "oidc-provider")); err != nil {
			t.Skip("oidc-provider is not installed: npm ci in .ci/oidc (.ci/run does)")
		}
		c := exec.Command(bin, "bench", "--compare", "--oidc-dir", oidcDir, "--phases", "cycle,introspect-assert",
			"--duration", "1s", "--clients", "4", "--agents", "300", "--json")
		c.Env = append(childEnv(), "TMPDIR="+t.TempDir())
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("writ bench --compare: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var sum benchSummary
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, out)
		}
		targets := map[string]int{}
		for _, r := range sum.Load {
			targets[r.Target]++
			if r.Count == 0 || r.Errors != 0 || r.ServerCPUusPerOp <= 0 {
				t.Errorf("%s %s: %+v", r.Target, r.Phase, r)
			}
		}
		if targets["writ"] != 2 || targets[providerTarget] != 2 || len(sum.Ratios) != 2 {
			t.Errorf("results %v, ratios %+v", targets, sum.Ratios)
		}
		for _, r := range sum.Ratios {
			if r.Throughput <= 0 || r.P99 <= 0 {
				t.Errorf("ratio %+v", r)
			}
		}
	})

	t.Run("SIGKILL leaves no server", func(t *testing.T) {
		c := exec.Command(bin, "bench", "--phases", "cycle", "--duration", "30s", "--clients", "2", "--agents", "20")
		c.Env = append(childEnv(), "TMPDIR="+t.TempDir())
		stderr, err := c.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		// "writ bench: writ serve (pid N) at …" names the child.
		pidRe := regexp.MustCompile(`writ serve \(pid (\d+)\)`)
		lines := bufio.NewScanner(stderr)
		serve := 0
		for serve == 0 && lines.Scan() {
			if m := pidRe.FindStringSubmatch(lines.Text()); m != nil {
				serve, _ = strconv.Atoi(m[1])
			}
		}
		if serve == 0 {
			t.Fatal("writ bench never said which process its server is")
		}
		go func() { // keep the pipe drained
			for lines.Scan() {
			}
		}()
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for alive(serve) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(serve, syscall.SIGKILL)
				t.Fatalf("writ serve (pid %d) still runs 30s after writ bench was killed", serve)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// alive says whether pid runs (a zombie, exited but not yet reaped by its
// new parent, counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	m := regexp.MustCompile(`\) (\S) `).FindSubmatch(b)
	return m != nil && string(m[1]) != "Z" && string(m[1]) != "X"
}
