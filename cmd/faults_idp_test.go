package cmd

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
)

// TestFaultIdPUnreachableLogin (issue 12, faults): `writ login` against a
// server whose identity provider is down says what it is doing while it
// waits, then fails with exit code 7, naming the provider and saying what
// to do.
func TestFaultIdPUnreachableLogin(t *testing.T) {
	r := newFaultRig(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there: connections are refused
	r.serve("serve", "--oidc-issuer", down, "--oidc-client-id", "writ")

	c := exec.Command(r.bin, "login", "--server", r.issuer())
	c.Env = append(childEnv(), "XDG_STATE_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err = within(t, "writ login", c.Run)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUnreachable {
		t.Fatalf("writ login: %v, want exit %d\n%s%s", err, exitUnreachable, stdout.String(), stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		"Contacting the identity provider at " + down, // progress, before the wait
		down + " is unreachable",
		"run `writ login` again",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("writ login said %q, want it to say %q", out, want)
		}
	}
}

// TestFaultIdPUnreachableRemoteRefresh (issue 12, faults): the operator
// CLI and the remote console refresh the session's ID token before they
// exchange it at the server. With the provider down, a session that is
// still good keeps being used until its own expiry (before the fix the
// first failed refresh ended it); past its expiry it asks to sign in
// again, so nothing is approved on a stale identity (the server never
// issues an operator token beyond the ID token's expiry either:
// opapi TestAuthentication).
func TestFaultIdPUnreachableRemoteRefresh(t *testing.T) {
	idp, err := devidp.Start(t.Context(), devidp.Options{AutoApprove: "dana", IDTokenLifetime: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	now := time.Now
	oc, err := operator.New(operator.Config{Issuer: idp.Issuer(), ClientID: devidp.ClientID, ApproverGroup: devidp.ApproverGroup,
		Scopes: []string{"openid", "profile", "email", "offline_access"}, Now: func() time.Time { return now() }})
	if err != nil {
		t.Fatal(err)
	}
	da, err := oc.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := oc.WaitDevice(t.Context(), da)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.Refreshable() {
		t.Fatal("the development provider gave no refresh token")
	}
	r := &remote{session: sess, oc: oc, log: slog.New(slog.DiscardHandler)}
	// With the provider up, a session in its last 30 s is refreshed.
	if tok, err := r.idToken(t.Context()); err != nil || tok == "" {
		t.Fatalf("refresh with the provider up: %v", err)
	}
	if err := idp.Close(); err != nil {
		t.Fatal(err)
	}
	// The provider is down; the session has not expired: it is used.
	held := r.session.IDToken()
	tok, err := within2(t, func() (string, error) { return r.idToken(t.Context()) })
	if err != nil || tok != held {
		t.Fatalf("refresh with the provider down, session still good: %v (same token: %v)", err, tok == held)
	}
	// Past its expiry it has ended: sign in again.
	exp := r.session.Expiry
	now = func() time.Time { return exp.Add(time.Second) }
	_, err = within2(t, func() (string, error) { return r.idToken(t.Context()) })
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code != exitUnauthorized || !strings.Contains(err.Error(), "writ login") {
		t.Fatalf("after the session's expiry: %v, want exit %d asking for writ login", err, exitUnauthorized)
	}
}

// within runs fn and fails the test if it has not returned within two
// minutes: a hang detector, not a timing assertion.
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s hangs", what)
		return nil
	}
}

func within2(t *testing.T, fn func() (string, error)) (string, error) {
	t.Helper()
	var s string
	err := within(t, "the ID token", func() error {
		var err error
		s, err = fn()
		return err
	})
	return s, err
}
