package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store"
)

const crashEnv = "WRIT_CRASH_CHILD_DB"

// TestCrashChild is the child process of TestCrashSafety: it issues and
// revokes as fast as it can, printing each minted jti and each revoked
// grant once the call has returned (that is, once it is durable), until
// it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashSafety")
	}
	st, err := store.Open(path, store.Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{Issuer: "https://writ.example",
		SubmitRate: 1e6, SubmitBurst: 1e6, MaxPendingPerAgent: 1e6})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "crash test",
			Scopes: []string{"contents:read"}, Resource: gitURI})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		g, err := svc.Approve(ctx, op, r.ID)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		tok, err := svc.Redeem(ctx, "release-bot", r.ID, "")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "minted", tok.JTI, g.ID)
		out.Flush()
		if i%3 == 0 {
			if _, err := svc.Revoke(ctx, op, g.ID, "crash test"); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Fprintln(out, "revoked", g.ID)
			out.Flush()
		}
		if i%50 == 49 {
			if _, err := svc.RevokeAgent(ctx, op, "release-bot", "crash test", false); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			fmt.Fprintln(out, "epoch")
			out.Flush()
		}
	}
}

// TestCrashSafety kills a process that is issuing and revoking at random
// moments, many times, and checks after each restart that every minted
// token has its grant and its audit entry, that no revoked grant is
// active, and that the audit chain verifies.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes")
	}
	rounds := 12
	if v := os.Getenv("WRIT_CRASH_ROUNDS"); v != "" {
		fmt.Sscanf(v, "%d", &rounds)
	}
	path := filepath.Join(t.TempDir(), "writ.db")
	minted := map[string]string{} // jti → grant
	revoked := map[string]bool{}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it run until it has done some work, then a random while more.
		kill := time.After(time.Duration(150+rand.IntN(400)) * time.Millisecond)
		seen := 0
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				seen++
				record(t, l, minted, revoked)
			case <-kill:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				kill = nil
			}
		}
		_ = cmd.Wait()
		checkAfterCrash(t, round, path, minted, revoked)
	}
	if len(minted) == 0 {
		t.Fatal("the child never minted a token")
	}
	t.Logf("%d rounds, %d tokens minted, %d grants revoked", rounds, len(minted), len(revoked))
}

func record(t *testing.T, line string, minted map[string]string, revoked map[string]bool) {
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "minted":
		minted[f[1]] = f[2]
	case len(f) == 2 && f[0] == "revoked":
		revoked[f[1]] = true
	case len(f) == 1 && f[0] == "epoch":
	case len(f) > 0 && f[0] == "error":
		t.Fatalf("child failed: %s", line)
	}
}

func checkAfterCrash(t *testing.T, round int, path string, minted map[string]string, revoked map[string]bool) {
	t.Helper()
	st, err := store.Open(path, store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	defer st.Close()
	ctx := context.Background()
	svc, err := broker.New(ctx, testConfig(), st, broker.Options{Issuer: "https://writ.example"})
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	if _, err := broker.VerifyAuditLog(ctx, st); err != nil {
		t.Fatalf("round %d: audit chain: %v", round, err)
	}
	issued := map[string]bool{}
	err = st.View(ctx, func(tx broker.TxReader) error {
		return tx.ForEachAudit(1, func(e *broker.AuditEntry) error {
			if e.Kind == broker.AuditTokenIssued {
				issued[e.JTI] = true
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx broker.TxReader) error {
		for jti, gid := range minted {
			tok, err := tx.Token(jti)
			if err != nil {
				return fmt.Errorf("minted token %s has no record: %w", jti, err)
			}
			g, err := tx.Grant(tok.GrantID)
			if err != nil || g.ID != gid || g.TokenJTI != jti {
				return fmt.Errorf("minted token %s has no grant: %v", jti, err)
			}
			if !issued[jti] {
				return fmt.Errorf("minted token %s has no audit entry", jti)
			}
		}
		// Every token in the store, acknowledged or not, has its grant and audit entry.
		return tx.ForEachGrant(func(g *broker.Grant) error {
			if g.TokenJTI == "" {
				return nil
			}
			if _, err := tx.Token(g.TokenJTI); err != nil {
				return fmt.Errorf("grant %s names token %s that has no record", g.ID, g.TokenJTI)
			}
			if !issued[g.TokenJTI] {
				return fmt.Errorf("token %s of grant %s has no audit entry", g.TokenJTI, g.ID)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	for gid := range revoked {
		g, err := svc.Grant(ctx, gid)
		if err != nil {
			t.Fatalf("round %d: revoked grant %s lost: %v", round, gid, err)
		}
		if g.State != broker.GrantRevoked || svc.EffectiveState(g) == broker.GrantActive {
			t.Fatalf("round %d: revoked grant %s is %s after restart", round, gid, g.State)
		}
	}
}
