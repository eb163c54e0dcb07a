package operator

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangingOP is a provider that accepts connections and never answers.
func hangingOP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// refusingOP is an address nothing listens on: connections are refused.
func refusingOP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	return issuer
}

// within runs fn and fails the test if it has not returned by the
// deadline: a hang detector, not a timing assertion.
func within(t *testing.T, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s hangs while the identity provider does not answer", what)
		return nil
	}
}

// wantUnreachable checks that err says the provider at issuer cannot be
// reached and names it. What to do is said where it is shown: the
// console's unreachable screen (tui/signin TestFlowUnreachable) and
// `writ login` (cmd TestFaultIdPUnreachableLogin).
func wantUnreachable(t *testing.T, what string, err error, issuer string) {
	t.Helper()
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Issuer != issuer {
		t.Fatalf("%s: err = %v, want *UnreachableError for %s", what, err, issuer)
	}
	if msg := err.Error(); !strings.Contains(msg, issuer) || !strings.Contains(msg, "unreachable") {
		t.Errorf("%s: %q does not say that %s is unreachable", what, msg, issuer)
	}
}

// TestFaultIdPUnreachableAtSignIn (issue 12, faults): with the provider
// down, refusing connections or accepting and never answering, before
// sign-in or in the middle of it, every sign-in step fails with an
// *UnreachableError that names the issuer and says what to do, and none
// hangs: each HTTP call to the provider is bounded (the default client has
// a timeout, discovery its own).
func TestFaultIdPUnreachableAtSignIn(t *testing.T) {
	t.Parallel()
	// The defaults bound every call to the provider.
	c := newTestClient(t, Config{Issuer: "https://idp.example.com"})
	if c.cfg.HTTPClient.Timeout <= 0 || discoveryTimeout <= 0 {
		t.Fatalf("provider calls are unbounded: client timeout %v, discovery %v", c.cfg.HTTPClient.Timeout, discoveryTimeout)
	}
	// A test-sized bound stands for the default 30 s against the hanging
	// provider, which shows that a timeout is reported as unreachable.
	short := &http.Client{Timeout: 500 * time.Millisecond}

	for _, tc := range []struct {
		name   string
		issuer func(t *testing.T) string
		client *http.Client
	}{
		{"refused", refusingOP, nil},
		{"hanging", hangingOP, short},
	} {
		for _, login := range []string{LoginDevice, LoginBrowser} {
			t.Run(tc.name+"/"+login, func(t *testing.T) {
				t.Parallel()
				issuer := tc.issuer(t)
				c := newTestClient(t, Config{Issuer: issuer, Login: login, HTTPClient: tc.client})
				err := within(t, "sign-in", func() error {
					var err error
					if login == LoginDevice {
						_, err = c.StartDevice(t.Context())
					} else {
						_, err = c.StartBrowser(t.Context())
					}
					return err
				})
				wantUnreachable(t, "start "+login, err, issuer)
			})
		}
	}

	// The provider answers discovery and the device authorization, then
	// goes away while the console polls for the person's sign-in.
	t.Run("stopped mid-sign-in", func(t *testing.T) {
		t.Parallel()
		f := newFakeOP(t)
		f.set(func(f *fakeOP) { f.deviceError = "authorization_pending" })
		c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID})
		da, err := c.StartDevice(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		f.srv.CloseClientConnections()
		f.srv.Close()
		err = within(t, "waiting for the device sign-in", func() error {
			_, err := c.WaitDevice(t.Context(), da)
			return err
		})
		wantUnreachable(t, "wait device", err, f.issuer())
	})
}

// TestFaultIdPUnreachableAtRefresh (issue 12, faults): a session whose
// refresh fails because the provider is down stays good until its own
// expiry (KeepAlive reports nothing before then, Refresh keeps the
// remembered session) and then ends, asking to sign in again; it never
// ends early and is never extended without the provider.
func TestFaultIdPUnreachableAtRefresh(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) {
		f.refreshToken = "rt-1"
		// Nearly over already: the refresh is due at once, and the
		// session ends two seconds from now.
		f.claims = func(m map[string]any) {
			m["iat"] = time.Now().Add(-time.Minute).Unix()
			m["exp"] = time.Now().Add(2 * time.Second).Unix()
		}
	})
	path := t.TempDir() + "/session.json"
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser,
		Remember: true, SessionPath: path})
	s := signInBrowser(t, c)
	if !s.Refreshable() || s.Ended(time.Now()) {
		t.Fatalf("session %v: want a live, refreshable one", s)
	}
	f.srv.CloseClientConnections()
	f.srv.Close()

	// One refresh: unreachable, and the session is kept.
	err := within(t, "refresh", func() error { _, err := c.Refresh(t.Context(), s); return err })
	wantUnreachable(t, "refresh", err, f.issuer())
	if r, err := c.Resume(t.Context()); err != nil || r.Expiry != s.Expiry {
		t.Fatalf("the remembered session is gone after an unreachable refresh: %v, %v", r, err)
	}

	// KeepAlive keeps the session until its expiry, then ends it.
	var reports []error
	var at time.Time
	err = within(t, "KeepAlive", func() error {
		c.KeepAlive(t.Context(), s, func(ns *Session, err error) {
			if ns != nil {
				t.Errorf("KeepAlive renewed the session without the provider: %v", ns)
			}
			at = time.Now()
			reports = append(reports, err)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || !errors.Is(reports[0], ErrSessionEnded) {
		t.Fatalf("KeepAlive reported %v, want one ErrSessionEnded", reports)
	}
	if at.Before(s.Expiry) {
		t.Errorf("the session was ended at %v, before its expiry %v, though only the provider was down", at, s.Expiry)
	}
	for _, want := range []string{"sign in again", f.issuer()} {
		if !strings.Contains(reports[0].Error(), want) {
			t.Errorf("the end says %q, want it to mention %q", reports[0], want)
		}
	}
}
