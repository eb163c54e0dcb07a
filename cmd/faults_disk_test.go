//go:build linux

package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sys/unix"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/opapi/client"
)

// TestFaultDiskFull (issue 12, faults) makes the store's writes fail under
// a running `writ serve` and gives the space back, without a restart.
//
// The writes fail from outside, through the server's RLIMIT_FSIZE
// (prlimit(2) on the child: no privileges needed, so it runs wherever CI
// does; Go programs ignore SIGXFSZ, so the write fails with EFBIG). First
// the limit is the store file's size: bbolt preallocates its file, so
// writes go on into the space it has until a commit needs the file to
// grow, as on a full disk. Then the limit is two pages, so that no commit
// at all can be written, however small.
//
// While the store cannot write: an agent's submission, redemption and
// own revocation are refused 503 temporarily_unavailable with Retry-After
// and a description that says the store cannot write (before the fix:
// 500 server_error "internal error"); introspection of a token issued
// before still answers; the operator API refuses a revocation with 503
// and says why, and never reports one done that was not written. When the
// limit is lifted the same calls succeed on the same server, and
// afterwards the store passes bbolt's check, its audit chain verifies and
// every grant has its decision and request, every token its grant.
func TestFaultDiskFull(t *testing.T) {
	r := newFaultRig(t, 4)
	child := r.start("serve")
	ctx := t.Context()
	op := r.operator(ctx)
	even := r.agent(ctx, 0) // the policy approves agent 0's requests
	acked := map[string]bool{}
	tokA := mint(t, ctx, even, acked)
	tokB := mint(t, ctx, even, acked)
	_, grantB, err := tokenClaims(tokB)
	if err != nil {
		t.Fatal(err)
	}

	// A request the policy approved, not yet redeemed.
	waiting, err := even.Request(ctx, agent.TaskRequest{Intent: "redeem while full", Scopes: []string{load.Scope},
		Resource: load.ResourceURI})
	if err != nil {
		t.Fatal(err)
	}
	acked[waiting.ID] = true

	fi, err := os.Stat(r.db)
	if err != nil {
		t.Fatal(err)
	}
	setFileLimit(t, child.pid(), uint64(fi.Size()))
	lifted := false
	t.Cleanup(func() {
		if !lifted {
			setFileLimit(t, child.pid(), unix.RLIM_INFINITY)
		}
	})

	// Submit until the store cannot take more: every submission either
	// succeeds or is refused as the store's, nothing in between.
	fills := 0
	for ; ; fills++ {
		if fills == 5000 {
			t.Fatalf("5,000 submissions fitted in a store limited to %d bytes", fi.Size())
		}
		p, err := even.Request(ctx, agent.TaskRequest{Intent: fmt.Sprintf("fill %d", fills), Scopes: []string{load.Scope},
			Resource: load.ResourceURI})
		if err == nil {
			acked[p.ID] = true
			continue
		}
		var refusal *agent.Error
		if !errors.As(err, &refusal) || refusal.Status != http.StatusServiceUnavailable || refusal.Code != "temporarily_unavailable" {
			t.Fatalf("submission %d while the store cannot grow: %v, want 503 temporarily_unavailable%s", fills, err, child.logTail())
		}
		break
	}
	t.Logf("the store was full after %d more submissions", fills)

	// Reads go on: a token issued before is still active.
	if active, err := r.introspect(ctx, tokA); err != nil || !active {
		t.Fatalf("introspection of a live token while the store is full: active=%v, %v", active, err)
	}

	// Now no write at all succeeds (no page past the two meta pages can be
	// written), so even a small revocation cannot be committed.
	setFileLimit(t, child.pid(), 8192)
	// The agent is told so, with when to retry.
	status, retryAfter, body := rawSubmit(t, ctx, r, 0)
	if status != http.StatusServiceUnavailable || retryAfter == "" || !strings.Contains(body, "temporarily_unavailable") ||
		!strings.Contains(body, "cannot write to its store") {
		t.Fatalf("submission while no write succeeds: %d, Retry-After %q, %s", status, retryAfter, body)
	}
	if active, err := r.introspect(ctx, tokA); err != nil || !active {
		t.Fatalf("introspection of a live token while no write succeeds: active=%v, %v", active, err)
	}
	// A revocation that cannot be written is refused, saying why, never
	// reported done; the operator API and the console show the message.
	_, err = op.RevokeGrant(ctx, grantB, "fault test: full disk")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || broker.ErrorCode(err) != broker.EUNAVAILABLE ||
		!strings.Contains(broker.ErrorMessage(err), "cannot write to its store") {
		t.Fatalf("revocation while no write succeeds: %v, want 503 %s saying the store cannot write", err, broker.EUNAVAILABLE)
	}

	// Redeeming the approved request cannot be written either: the agent
	// is told to retry (its SDK's Wait does), and the request stays
	// approved, not half-redeemed.
	if _, err := even.Poll(ctx, waiting); !isUnavailable(err) {
		t.Fatalf("redemption while no write succeeds: %v, want 503 temporarily_unavailable", err)
	}
	// The agent's own revocation (RFC 7009) is refused, not reported done.
	if err := even.Revoke(ctx, tokA); !isUnavailable(err) {
		t.Fatalf("the agent's revocation while no write succeeds: %v, want 503 temporarily_unavailable", err)
	}

	// Readiness, the metrics and the operator API's status say so.
	checkCannotWrite(t, ctx, r, op, "file too large")

	// Space comes back: readiness returns by itself, and the same server
	// takes the same calls.
	setFileLimit(t, child.pid(), unix.RLIM_INFINITY)
	lifted = true
	waitReady(t, ctx, r, op, child)
	after, err := even.Request(ctx, agent.TaskRequest{Intent: "after", Scopes: []string{load.Scope}, Resource: load.ResourceURI})
	if err != nil {
		t.Fatalf("submission once space is back: %v", err)
	}
	acked[after.ID] = true
	if _, err := op.RevokeGrant(ctx, grantB, "fault test: full disk"); err != nil {
		t.Fatalf("revocation once space is back: %v", err)
	}
	if active, err := r.introspect(ctx, tokB); err != nil || active {
		t.Fatalf("the revoked token introspects active=%v, %v", active, err)
	}
	task, err := even.Poll(ctx, waiting)
	if err != nil {
		t.Fatalf("redemption once space is back: %v", err)
	}
	tokC := task.AccessToken
	if err := even.Revoke(ctx, tokA); err != nil {
		t.Fatalf("the agent's revocation once space is back: %v", err)
	}
	if active, err := r.introspect(ctx, tokA); err != nil || active {
		t.Fatalf("the token its agent revoked introspects active=%v, %v", active, err)
	}

	if err := child.stop(); err != nil {
		t.Fatalf("writ serve did not stop cleanly: %v%s", err, child.logTail())
	}
	led := newLedger()
	for _, tok := range []string{tokA, tokB, tokC} {
		jti, grant, err := tokenClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		led.tokens[jti] = tokenSeen{grant: grant, token: tok}
	}
	led.grantRevoked[grantB] = true
	checkStoreAfterKill(t, r, led, "after the disk was full")
	checkSubmissions(t, r, acked)
}

// isUnavailable reports whether err is writ's answer that the store cannot
// write: 503 temporarily_unavailable.
func isUnavailable(err error) bool {
	var e *agent.Error
	return errors.As(err, &e) && e.Status == http.StatusServiceUnavailable && e.Code == "temporarily_unavailable"
}

// rawSubmit sends agent i's backchannel authentication request by hand,
// for the status, Retry-After and body the SDK does not show.
func rawSubmit(t *testing.T, ctx context.Context, r *faultRig, i int) (int, string, string) {
	t.Helper()
	k := r.setup.Agents[i]
	assert, err := guard.PrivateKeyJWT(k.AgentID, &k.JWK, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	a, err := assert(ctx, r.issuer())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"scope": {load.Scope}, "resource": {load.ResourceURI}, "login_hint": {load.Queue},
		"binding_message": {"fault test"}, "client_assertion": {a},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.issuer()+"/bc-authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// mint runs one policy-approved cycle for c and returns the token. The
// policy approves at submission, so the first poll gets it. The request
// is added to acked.
func mint(t *testing.T, ctx context.Context, c *agent.Client, acked map[string]bool) string {
	t.Helper()
	p, err := c.Request(ctx, agent.TaskRequest{Intent: "fault test", Scopes: []string{load.Scope}, Resource: load.ResourceURI})
	if err != nil {
		t.Fatal(err)
	}
	acked[p.ID] = true
	task, err := c.Poll(ctx, p)
	if errors.Is(err, agent.ErrPending) {
		task, err = c.Wait(ctx, p, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return task.AccessToken
}

// checkSubmissions checks that the store holds exactly the submissions
// that were acknowledged: a refused one left nothing behind.
func checkSubmissions(t *testing.T, r *faultRig, acked map[string]bool) {
	t.Helper()
	st := r.openStore("submissions")
	defer st.Close()
	seen := map[string]bool{}
	err := st.View(context.Background(), func(tx broker.TxReader) error {
		return tx.ForEachAudit(1, func(e *broker.AuditEntry) error {
			if e.Kind != broker.AuditRequestSubmitted {
				return nil
			}
			if !acked[e.RequestID] {
				return fmt.Errorf("request %s is in the store, but its submission was refused", e.RequestID)
			}
			if _, err := tx.Request(e.RequestID); err != nil {
				return fmt.Errorf("audited request %s has no record: %w", e.RequestID, err)
			}
			seen[e.RequestID] = true
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(acked) {
		t.Fatalf("%d acknowledged submissions, %d in the store", len(acked), len(seen))
	}
}

// setFileLimit sets the soft RLIMIT_FSIZE of process pid.
func setFileLimit(t *testing.T, pid int, limit uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatalf("read RLIMIT_FSIZE of %d: %v", pid, err)
	}
	lim := unix.Rlimit{Cur: min(limit, old.Max), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Skipf("cannot set RLIMIT_FSIZE of writ serve (%v): no way to fill its disk here", err)
	}
}

// TestFaultDiskFullTmpfs (issue 12, faults) runs writ serve on a small
// tmpfs and fills it, when the test may mount one (root, or a CI that
// allows it; otherwise it skips, and TestFaultDiskFull covers the same
// answers with a file size limit). This is the disk really full: bbolt's
// writes into its sparse file fail with ENOSPC. Every call then either
// succeeds, and is in force afterwards, or is refused 503; when the
// filler is removed the same server carries on and the store verifies.
func TestFaultDiskFullTmpfs(t *testing.T) {
	r := newFaultRig(t, 4)
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestFaultDiskFull fills the disk with a file size limit instead", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, 0) }) // after the server has stopped
	r.db = filepath.Join(mnt, "writ.db")
	child := r.start("serve")
	ctx := t.Context()
	op := r.operator(ctx)
	even := r.agent(ctx, 0)
	acked := map[string]bool{}
	tokA, tokB := mint(t, ctx, even, acked), mint(t, ctx, even, acked)
	_, grantB, err := tokenClaims(tokB)
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := even.Request(ctx, agent.TaskRequest{Intent: "redeem while full", Scopes: []string{load.Scope},
		Resource: load.ResourceURI})
	if err != nil {
		t.Fatal(err)
	}
	acked[waiting.ID] = true

	// Fill the disk.
	filler := filepath.Join(mnt, "filler")
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the tmpfs: %v", err)
			}
			break
		}
	}
	f.Close()

	led := newLedger()
	fills := 0
	for ; ; fills++ {
		if fills == 5000 {
			t.Fatal("5,000 submissions fitted on a full disk")
		}
		p, err := even.Request(ctx, agent.TaskRequest{Intent: fmt.Sprintf("fill %d", fills), Scopes: []string{load.Scope},
			Resource: load.ResourceURI})
		if err == nil {
			acked[p.ID] = true
			continue
		}
		if !isUnavailable(err) {
			t.Fatalf("submission %d on a full disk: %v, want 503 temporarily_unavailable%s", fills, err, child.logTail())
		}
		break
	}
	t.Logf("the disk was full after %d more submissions", fills)
	if active, err := r.introspect(ctx, tokA); err != nil || !active {
		t.Fatalf("introspection of a live token on a full disk: active=%v, %v", active, err)
	}
	// Each call is done (and then in force) or refused as the store's.
	revokedB := false
	switch _, err := op.RevokeGrant(ctx, grantB, "fault test: full disk"); {
	case err == nil:
		revokedB = true
	case broker.ErrorCode(err) != broker.EUNAVAILABLE:
		t.Fatalf("revocation on a full disk: %v, want done or %s", err, broker.EUNAVAILABLE)
	}
	task, err := even.Poll(ctx, waiting)
	if err != nil && !isUnavailable(err) {
		t.Fatalf("redemption on a full disk: %v, want a token or 503", err)
	}
	t.Logf("on the full disk: revocation done %v, redemption done %v", revokedB, err == nil)

	// Space comes back: readiness returns by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ctx, r, op, child)
	after, err := even.Request(ctx, agent.TaskRequest{Intent: "after", Scopes: []string{load.Scope}, Resource: load.ResourceURI})
	if err != nil {
		t.Fatalf("submission once space is back: %v", err)
	}
	acked[after.ID] = true
	if !revokedB {
		if _, err := op.RevokeGrant(ctx, grantB, "fault test: full disk"); err != nil {
			t.Fatalf("revocation once space is back: %v", err)
		}
	}
	if active, err := r.introspect(ctx, tokB); err != nil || active {
		t.Fatalf("the revoked token introspects active=%v, %v", active, err)
	}
	if task == nil {
		if task, err = even.Poll(ctx, waiting); err != nil {
			t.Fatalf("redemption once space is back: %v", err)
		}
	}
	if err := child.stop(); err != nil {
		t.Fatalf("writ serve did not stop cleanly: %v%s", err, child.logTail())
	}
	for _, tok := range []string{tokA, tokB, task.AccessToken} {
		jti, grant, err := tokenClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		led.tokens[jti] = tokenSeen{grant: grant, token: tok}
	}
	led.grantRevoked[grantB] = true
	checkStoreAfterKill(t, r, led, "after the disk was full")
	checkSubmissions(t, r, acked)
}
