package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
	"github.com/writhq/writ/store"
)

// The phases that go through the operator API (/v1/): cycle-operator,
// and revoke-all over HTTP. The bench signs its operators in as the CLI
// does (device flow at the server's identity provider, then the ID token
// exchanged for a DPoP-bound operator token); the provider must approve
// the sign-in by itself, which `writ serve --dev-oidc USER` does.

// benchOperatorUser is who `writ serve --dev-oidc` signs the bench's
// operators in as: the development provider's approver.
const benchOperatorUser = devidp.Dana

// devOIDCArgs start a child's operator API with the development provider.
var devOIDCArgs = []string{"--dev-oidc", benchOperatorUser}

// operatorSignInTimeout bounds one sign-in: the development provider
// approves at once; any other waits for a person, which the bench cannot.
const operatorSignInTimeout = 30 * time.Second

// signInOperator signs one operator in at the server at issuer and
// returns its operator API client, with a pool of connections for
// inFlight concurrent calls. A call that cannot reach the server fails
// after a second instead of being retried for long: the bench counts it.
func signInOperator(ctx context.Context, issuer string, inFlight int) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, operatorSignInTimeout)
	defer cancel()
	li, err := client.LoginInfo(ctx, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("operator API at %s: %w (start writ serve with --dev-oidc %s)", issuer, err, benchOperatorUser)
	}
	oc, err := operator.New(operator.Config{Issuer: li.OIDCIssuer, ClientID: li.ClientID, ApproverGroup: li.ApproverGroup,
		GroupsClaim: li.GroupsClaim, Dev: true})
	if err != nil {
		return nil, err
	}
	da, err := oc.StartDevice(ctx)
	if err != nil {
		return nil, fmt.Errorf("operator sign-in at %s: %w", li.OIDCIssuer, err)
	}
	sess, err := oc.WaitDevice(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("operator sign-in at %s: %w (the bench needs a provider that signs in by itself: writ serve --dev-oidc %s)",
			li.OIDCIssuer, err, benchOperatorUser)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: inFlight * 2, MaxIdleConnsPerHost: inFlight * 2, IdleConnTimeout: time.Minute}}
	c, err := client.New(client.Options{Server: issuer, HTTPClient: hc, RetryFor: time.Second, Backoff: 50 * time.Millisecond,
		Logger:  slog.New(slog.DiscardHandler),
		IDToken: func(context.Context) (string, error) { return sess.IDToken(), nil }})
	if err != nil {
		return nil, err
	}
	if err := c.SignIn(ctx); err != nil {
		return nil, fmt.Errorf("operator API at %s: sign in: %w", issuer, err)
	}
	return c, nil
}

// operatorCyclePresignRate is the operator cycles per second signed ahead:
// each one is three durable commits and an event to every operator.
const operatorCyclePresignRate = 2000

// cycleOperatorPhase signs --operators operators in at issuer and runs
// the cycle with their approvals.
func (b *bencher) cycleOperatorPhase(ctx context.Context, issuer string, pid int) (load.Result, error) {
	if !load.HasOperatorScope(b.setup) {
		return load.Result{}, fmt.Errorf("the setup's configuration has no %s scope for operators to approve: write it again with writ bench --prepare", load.OperatorScope)
	}
	var ops []load.Approver
	for range b.f.operators {
		c, err := signInOperator(ctx, issuer, 2*load.ApprovalsInFlight)
		if err != nil {
			return load.Result{}, err
		}
		ops = append(ops, c)
	}
	o := b.options("writ", issuer, pid)
	o.PresignRate = operatorCyclePresignRate
	return load.CycleOperator(ctx, o, ops)
}

// revokeAllHTTP serves the store at db with the operator API on, signs
// one operator in, and times --revokes revoke-alls through /v1/ as the
// CLI sends them (freezing issuance, its default), each followed,
// untimed, by the unfreeze that lets the next start from the same state.
func (b *bencher) revokeAllHTTP(ctx context.Context, db string) ([]time.Duration, error) {
	child, err := startServeChild(ctx, b.dir, db, b.setup, devOIDCArgs...)
	if err != nil {
		return nil, err
	}
	defer child.stop()
	c, err := signInOperator(ctx, child.issuer, 1)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, child.logTail())
	}
	out := make([]time.Duration, 0, b.f.revokes)
	for i := range b.f.revokes {
		reason := fmt.Sprintf("writ bench: revoke-all %d of %d", i+1, b.f.revokes)
		t0 := time.Now()
		rev, err := c.RevokeAll(ctx, c.Operator(), reason, true)
		took := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("revoke-all %d over HTTP: %w%s", i+1, err, child.logTail())
		}
		if rev == nil || rev.Epoch == 0 {
			return nil, fmt.Errorf("revoke-all %d over HTTP: the answer holds no revocation", i+1)
		}
		out = append(out, took)
		if rev.Freeze {
			if err := c.Unfreeze(ctx, c.Operator(), reason+": unfreeze"); err != nil {
				return nil, fmt.Errorf("unfreeze after revoke-all %d: %w%s", i+1, err, child.logTail())
			}
		}
	}
	if err := child.stop(); err != nil {
		return nil, fmt.Errorf("stop writ serve: %w%s", err, child.logTail())
	}
	return out, nil
}

// revokeAllPhase times revoke-all on the store of active grants and on
// an empty one: through the operator API of a writ serve child (the
// figure), then in this process on the same store (the floor it is read
// against: the domain's durable commit without HTTP, sign-in or proofs).
func (b *bencher) revokeAllPhase(ctx context.Context, db string) error {
	// The in-process run gets a copy of the store as seeded: the HTTP
	// run's revocations would otherwise have ended its grants already.
	if err := copyFile(db, db+".in-process"); err != nil {
		return err
	}
	var res revokeAllResult
	for _, c := range []struct {
		path, inProcPath string
		grants           int
		http, inProc     *revokeAllTimes
	}{
		{db, db + ".in-process", b.f.grants, &res.HTTPWithGrants, &res.WithGrants},
		{filepath.Join(b.dir, "empty-revoke.db"), filepath.Join(b.dir, "empty-revoke-in-process.db"), 0, &res.HTTPEmpty, &res.Empty},
	} {
		times, err := b.revokeAllHTTP(ctx, c.path)
		if err != nil {
			return err
		}
		*c.http = newRevokeAllTimes(c.grants, times)
		fmt.Fprintf(b.progress, "writ bench: revoke-all through /v1/ ×%d with %d active grants: p50 %s p99 %s\n",
			len(times), c.grants, ms(c.http.p50), ms(c.http.p99))
		st, err := store.Open(c.inProcPath, store.Options{})
		if err != nil {
			return err
		}
		times, err = load.RevokeAllTimes(ctx, st, b.setup, b.f.revokes)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		*c.inProc = newRevokeAllTimes(c.grants, times)
		fmt.Fprintf(b.progress, "writ bench: revoke-all in-process ×%d with %d active grants: p50 %s p99 %s\n",
			len(times), c.grants, ms(c.inProc.p50), ms(c.inProc.p99))
	}
	b.sum.Revoke = &res
	return nil
}

// copyFile copies the closed store at from to a new file to.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return dst.Close()
}
