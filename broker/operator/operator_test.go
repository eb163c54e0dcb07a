package operator

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/operator/devidp"
)

// noBrowser stands in for a machine without a browser: the tests play the
// browser themselves, with an HTTP client.
func noBrowser(string) error { return errors.New("headless test") }

func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = devidp.ClientID
	}
	cfg.OpenBrowser = noBrowser
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startDevIDP(t testing.TB, opts devidp.Options) *devidp.Provider {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := devidp.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = p.Close()
	})
	return p
}

// browse plays the person at the browser: it follows the authorization URL,
// answers the development provider's sign-in page with username and action
// (when the provider shows one) and returns the page writ's loopback
// listener answered with.
func browse(t testing.TB, authURL, username, action string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if u := resp.Request.URL; u.Path == "/login" {
		form := url.Values{"authRequestID": {u.Query().Get("authRequestID")}, "username": {username}, "action": {action}}
		login := *u
		login.RawQuery = ""
		if resp, err = hc.PostForm(login.String(), form); err != nil {
			t.Fatalf("browser: sign-in form: %v", err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp.StatusCode, string(body)
}

func TestDeviceFlowSignsInApprover(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Dev: true})
	ctx := t.Context()

	da, err := c.StartDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da.UserCode == "" || !strings.Contains(da.VerificationURIComplete, "user_code=") || da.Expiry.IsZero() {
		t.Fatalf("device auth incomplete: %+v", da)
	}
	if err := idp.ApproveDevice(da.UserCode, devidp.Dana); err != nil {
		t.Fatal(err)
	}
	s, err := c.WaitDevice(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	want := broker.Operator{Issuer: idp.Issuer(), Subject: "u-dana-0001", Email: "dana@demo.writ.test", EmailVerified: true, Name: "Dana Demo", Dev: true}
	got := s.Operator
	got.AuthTime = time.Time{}
	if got != want {
		t.Errorf("operator = %+v, want %+v", got, want)
	}
	if s.Operator.AuthTime.IsZero() {
		t.Error("auth_time not kept")
	}
	if s.Remaining(c.Now()) <= 0 || s.Refreshable() {
		t.Errorf("remaining %v refreshable %v: want a live session without refresh token (no offline_access asked)", s.Remaining(c.Now()), s.Refreshable())
	}
}

func TestDeviceFlowRefusesNonApprover(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer()})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.ApproveDevice(da.UserCode, devidp.Nico); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitDevice(t.Context(), da)
	var na *NotApproverError
	if !errors.As(err, &na) {
		t.Fatalf("err = %v, want *NotApproverError", err)
	}
	const want = `not an approver: claim "groups" has ["dev","qa"], needs "writ-approvers"`
	if err.Error() != want {
		t.Errorf("message = %q\nwant      %q", err.Error(), want)
	}
	if na.Operator.Name != "Nico Nogroup" || broker.ErrorCode(err) != broker.EFORBIDDEN {
		t.Errorf("operator %q code %q", na.Operator.Name, broker.ErrorCode(err))
	}
}

func TestDeviceFlowUserDenied(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer()})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.DenyDevice(da.UserCode); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitDevice(t.Context(), da); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
}

func TestDeviceFlowCodeExpired(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{DeviceCodeLifetime: time.Second})
	c := newTestClient(t, Config{Issuer: idp.Issuer()})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitDevice(t.Context(), da); !errors.Is(err, ErrDeviceCodeExpired) {
		t.Fatalf("err = %v, want ErrDeviceCodeExpired", err)
	}
}

func TestDeviceFlowCancelled(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer()})
	ctx, cancel := context.WithCancel(t.Context())
	da, err := c.StartDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := c.WaitDevice(ctx, da); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestDeviceFlowExpiredCodeFromProvider(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.deviceError = "expired_token" })
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitDevice(t.Context(), da); !errors.Is(err, ErrDeviceCodeExpired) {
		t.Fatalf("err = %v, want ErrDeviceCodeExpired", err)
	}
}

func TestBrowserFlowSignsInApprover(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Login: LoginBrowser})
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ba.URL)
	q := u.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			t.Errorf("authorization request has no %s", k)
		}
	}
	if q.Get("code_challenge_method") != "S256" || !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") {
		t.Errorf("authorization request: %s", ba.URL)
	}
	status, page := browse(t, ba.URL, devidp.Dana, "allow")
	if status != http.StatusOK || !strings.Contains(page, "return to your terminal") {
		t.Errorf("loopback page %d: %s", status, page)
	}
	s, err := c.WaitBrowser(t.Context(), ba)
	if err != nil {
		t.Fatal(err)
	}
	if s.Operator.Email != "dana@demo.writ.test" || s.Operator.Issuer != idp.Issuer() {
		t.Errorf("operator = %+v", s.Operator)
	}
	// The listener is gone once the flow is over.
	redirect, _ := url.Parse(ba.RedirectURL)
	if conn, err := net.Dial("tcp", redirect.Host); err == nil {
		conn.Close()
		t.Error("loopback listener still accepts connections after the flow")
	}
}

func TestBrowserFlowRefusesNonApprover(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Login: LoginBrowser})
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	status, page := browse(t, ba.URL, devidp.Nico, "allow")
	if status != http.StatusForbidden || !strings.Contains(page, "not an approver") {
		t.Errorf("loopback page %d: %s", status, page)
	}
	_, err = c.WaitBrowser(t.Context(), ba)
	const want = `not an approver: claim "groups" has ["dev","qa"], needs "writ-approvers"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestBrowserFlowUserDenied(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Login: LoginBrowser})
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	browse(t, ba.URL, devidp.Dana, "deny")
	if _, err := c.WaitBrowser(t.Context(), ba); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
}

func TestBrowserFlowIgnoresForeignState(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Login: LoginBrowser})
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ba.RedirectURL + "?code=stolen&state=not-ours")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign state: status %d, want 400", resp.StatusCode)
	}
	// The real callback still completes the sign-in.
	if status, page := browse(t, ba.URL, "", ""); status != http.StatusOK {
		t.Fatalf("loopback page %d: %s", status, page)
	}
	if _, err := c.WaitBrowser(t.Context(), ba); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserFlowCancelledStopsListener(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Login: LoginBrowser})
	ctx, cancel := context.WithCancel(t.Context())
	ba, err := c.StartBrowser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := c.WaitBrowser(t.Context(), ba); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	redirect, _ := url.Parse(ba.RedirectURL)
	if conn, err := net.Dial("tcp", redirect.Host); err == nil {
		conn.Close()
		t.Error("loopback listener still accepts connections after cancel")
	}
}

func TestProviderUnreachable(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	for _, login := range []string{LoginDevice, LoginBrowser} {
		c := newTestClient(t, Config{Issuer: issuer, Login: login})
		var err error
		if login == LoginDevice {
			_, err = c.StartDevice(t.Context())
		} else {
			_, err = c.StartBrowser(t.Context())
		}
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.Issuer != issuer || !strings.Contains(err.Error(), issuer) {
			t.Errorf("%s: err = %v, want *UnreachableError naming %s", login, err, issuer)
		}
	}
}

func TestIssuerMismatchAtDiscovery(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	// The same server under another name for loopback.
	other := strings.Replace(f.issuer(), "127.0.0.1", "localhost", 1)
	c := newTestClient(t, Config{Issuer: other, ClientID: fakeClientID})
	err := c.Discover(t.Context())
	if err == nil || !strings.Contains(err.Error(), f.issuer()) {
		t.Fatalf("err = %v, want it to name the provider's own issuer %s", err, f.issuer())
	}
}

func TestRefreshExtendsSession(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.refreshToken = "rt-1" })
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	if !s.Refreshable() {
		t.Fatal("session not refreshable though the provider gave a refresh token")
	}
	f.set(func(f *fakeOP) { f.now = f.now.Add(50 * time.Minute) })
	ns, err := c.Refresh(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !ns.Expiry.After(s.Expiry) {
		t.Errorf("refreshed expiry %v not after %v", ns.Expiry, s.Expiry)
	}
	if ns.Operator != s.Operator {
		t.Errorf("operator changed on refresh: %+v → %+v", s.Operator, ns.Operator)
	}
}

func TestRefreshAgainstDevProvider(t *testing.T) {
	t.Parallel()
	idp := startDevIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	c := newTestClient(t, Config{Issuer: idp.Issuer(), Scopes: []string{"openid", "profile", "email", "offline_access"}})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.WaitDevice(t.Context(), da)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Refreshable() {
		t.Fatal("no refresh token with offline_access")
	}
	ns, err := c.Refresh(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if ns.Expiry.Before(s.Expiry) || ns.IDToken() == s.IDToken() || ns.Operator.ID() != s.Operator.ID() {
		t.Errorf("refresh: expiry %v → %v, operator %s → %s", s.Expiry, ns.Expiry, s.Operator.ID(), ns.Operator.ID())
	}
	// The provider rotates refresh tokens: the old one is spent.
	if _, err := c.Refresh(t.Context(), s); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("refresh with a spent token: err = %v, want ErrSessionEnded", err)
	}
}

func TestRefreshWithoutRefreshTokenEnds(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	if _, err := c.Refresh(t.Context(), s); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", err)
	}
}

func TestRefreshWithoutIDTokenEnds(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.refreshToken, f.noIDTokenOnRefresh = "rt-1", true })
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	if _, err := c.Refresh(t.Context(), s); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", err)
	}
}

func TestRefreshRefusesAnotherSubject(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.refreshToken = "rt-1" })
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	f.set(func(f *fakeOP) { f.claims = func(m map[string]any) { m["sub"] = "someone-else" } })
	var ve *VerifyError
	if _, err := c.Refresh(t.Context(), s); !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *VerifyError", err)
	}
}

// signInBrowser runs the browser flow against a provider that signs in at
// once (the fake, or the dev provider with AutoApprove).
func signInBrowser(t testing.TB, c *Client) *Session {
	t.Helper()
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	browse(t, ba.URL, "", "")
	s, err := c.WaitBrowser(t.Context(), ba)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeepAliveRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) {
		f.refreshToken = "rt-1"
		// The first ID token is nearly over: refresh is due at once.
		f.claims = func(m map[string]any) {
			m["iat"] = time.Now().Add(-30 * time.Minute).Unix()
			m["exp"] = time.Now().Add(30 * time.Second).Unix()
		}
	})
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	f.set(func(f *fakeOP) {
		f.now = time.Now().Truncate(time.Second)
		f.claims = nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reports := make(chan *Session, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.KeepAlive(ctx, s, func(ns *Session, err error) {
			if err != nil {
				t.Errorf("keep-alive: %v", err)
			}
			reports <- ns
		})
	}()
	ns := <-reports
	if ns == nil || !ns.Expiry.After(s.Expiry) {
		t.Fatalf("renewed session %v, old expiry %v", ns, s.Expiry)
	}
	cancel()
	<-done // KeepAlive returns when its context ends
}

func TestKeepAliveReportsEndWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) {
		f.claims = func(m map[string]any) { m["exp"] = time.Now().Add(2 * time.Second).Unix() }
	})
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s := signInBrowser(t, c)
	var got error
	c.KeepAlive(t.Context(), s, func(_ *Session, err error) { got = err })
	if !errors.Is(got, ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", got)
	}
}

// TestDeviceFlowHonoursSlowDown: after slow_down the client waits 5 s more
// between polls (RFC 8628 §3.5), and authorization_pending keeps it polling.
func TestDeviceFlowHonoursSlowDown(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.deviceErrors = []string{"authorization_pending", "slow_down"} })
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if da.Interval != time.Second {
		t.Errorf("interval %v, want the provider's 1s", da.Interval)
	}
	if _, err := c.WaitDevice(t.Context(), da); err != nil {
		t.Fatal(err)
	}
	var polls []time.Time
	f.set(func(f *fakeOP) { polls = f.devicePolls })
	if len(polls) != 3 {
		t.Fatalf("%d polls, want 3", len(polls))
	}
	// The gap after slow_down is the interval plus 5 s: at least 6 s, never
	// the 1 s before it. (A lower bound only: nothing here depends on speed.)
	if gap := polls[2].Sub(polls[1]); gap < 6*time.Second {
		t.Errorf("polled again %v after slow_down, want ≥ 6s", gap)
	}
}
