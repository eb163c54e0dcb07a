package signin

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/operator"
)

// clock is the fixed time of every golden screen.
var clock = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testClient(t *testing.T, issuer string, dev bool, login string) *operator.Client {
	t.Helper()
	c, err := operator.New(operator.Config{
		Issuer: issuer, ClientID: "writ", Dev: dev, Login: login,
		Now:         func() time.Time { return clock },
		OpenBrowser: func(string) error { return errors.New("headless") },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// started returns a screen whose flow was started (its commands are not run:
// the golden tests feed it the messages the flow would send).
func started(t *testing.T, c *operator.Client, w, h int) *Model {
	t.Helper()
	m := New(c, DefaultStyles())
	m.SetSize(w, h)
	m.Init()
	return m
}

func deviceAuth(uri string, left time.Duration) *operator.DeviceAuth {
	return &operator.DeviceAuth{
		UserCode:                "BCDF-GHJK",
		VerificationURI:         uri,
		VerificationURIComplete: uri + "?user_code=BCDF-GHJK",
		Expiry:                  clock.Add(left),
		Interval:                5 * time.Second,
	}
}

func requireScreen(t *testing.T, m *Model) {
	t.Helper()
	view := ansi.Strip(m.View())
	for i, line := range splitLines(view) {
		if w := ansi.StringWidth(line); w > m.width {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i, w, m.width, line)
		}
	}
	if n := len(splitLines(view)); n > m.height {
		t.Errorf("%d lines, more than %d", n, m.height)
	}
	golden.RequireEqual(t, view)
}

func TestScreens(t *testing.T) {
	nico := broker.Operator{Issuer: "https://idp.example.com", Subject: "u-2", Name: "Nico Nogroup", Email: "nico@example.com"}
	cases := []struct {
		name          string
		issuer        string
		dev           bool
		login         string
		width, height int
		msg           func(attempt int) any
	}{
		{name: "starting", issuer: "https://login.example.com/realms/acme"},
		{name: "device-dev", issuer: "http://127.0.0.1:5556", dev: true, msg: func(n int) any {
			return deviceStartedMsg{attempt: n, auth: deviceAuth("http://127.0.0.1:5556/device", 5*time.Minute)}
		}},
		{name: "device-keycloak", issuer: "https://sso.example.com/realms/acme", msg: func(n int) any {
			return deviceStartedMsg{attempt: n, auth: deviceAuth("https://sso.example.com/realms/acme/device", 10*time.Minute)}
		}},
		{name: "device-expiring", issuer: "https://acme.okta.com", msg: func(n int) any {
			return deviceStartedMsg{attempt: n, auth: deviceAuth("https://acme.okta.com/activate", 42*time.Second)}
		}},
		{name: "device-narrow", issuer: "https://acme.okta.com", width: 60, msg: func(n int) any {
			return deviceStartedMsg{attempt: n, auth: deviceAuth("https://acme.okta.com/activate", 5*time.Minute)}
		}},
		{name: "browser", issuer: "https://accounts.example.com", login: operator.LoginBrowser, msg: func(n int) any {
			return browserStartedMsg{attempt: n, auth: &operator.BrowserAuth{
				URL: "https://accounts.example.com/authorize?client_id=writ&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256" +
					"&nonce=n-0S6_WzA2Mj&redirect_uri=http%3A%2F%2F127.0.0.1%3A43117%2Fcallback&response_type=code&scope=openid+profile+email&state=af0ifjsldkj",
				RedirectURL: "http://127.0.0.1:43117/callback",
			}}
		}},
		{name: "expired", issuer: "https://acme.okta.com", msg: func(n int) any {
			return resultMsg{attempt: n, err: operator.ErrDeviceCodeExpired}
		}},
		{name: "denied", issuer: "https://acme.okta.com", msg: func(n int) any {
			return resultMsg{attempt: n, err: operator.ErrAccessDenied}
		}},
		{name: "not-approver", issuer: "https://idp.example.com", msg: func(n int) any {
			return resultMsg{attempt: n, err: &operator.NotApproverError{Operator: nico, Claim: "groups", Group: "writ-approvers", Found: true, Value: `["dev","qa"]`}}
		}},
		{name: "unreachable", issuer: "https://idp.example.com", msg: func(n int) any {
			return deviceStartedMsg{attempt: n, err: &operator.UnreachableError{Issuer: "https://idp.example.com",
				Err: errors.New(`Get "https://idp.example.com/.well-known/openid-configuration": dial tcp: lookup idp.example.com: no such host`)}}
		}},
		{name: "failed", issuer: "https://idp.example.com", msg: func(n int) any {
			return resultMsg{attempt: n, err: &operator.VerifyError{Reason: "verification failed",
				Err: fmt.Errorf(`oidc: expected audience "writ" got ["another-client"]`)}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, h := tc.width, tc.height
			if w == 0 {
				w = 80
			}
			if h == 0 {
				h = 24
			}
			m := started(t, testClient(t, tc.issuer, tc.dev, tc.login), w, h)
			if tc.msg != nil {
				m.Update(tc.msg(m.attempt))
			}
			requireScreen(t, m)
		})
	}
}

func TestCountdownFollowsTheClock(t *testing.T) {
	now := clock
	c, err := operator.New(operator.Config{Issuer: "https://idp.example.com", ClientID: "writ", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m := New(c, DefaultStyles())
	m.Init()
	m.Update(deviceStartedMsg{attempt: m.attempt, auth: deviceAuth("https://idp.example.com/device", 2*time.Minute)})
	if got := ansi.Strip(m.expiryLine()); got != "The code expires in 2:00." {
		t.Errorf("at start: %q", got)
	}
	now = clock.Add(65 * time.Second)
	m.Update(tickMsg{attempt: m.attempt})
	if got := ansi.Strip(m.expiryLine()); got != "The code expires in 0:55." {
		t.Errorf("after 65 s: %q", got)
	}
	// A tick from an earlier attempt changes nothing.
	now = clock.Add(90 * time.Second)
	if cmd := m.Update(tickMsg{attempt: m.attempt - 1}); cmd != nil {
		t.Error("stale tick re-armed")
	}
	if got := ansi.Strip(m.expiryLine()); got != "The code expires in 0:55." {
		t.Errorf("after a stale tick: %q", got)
	}
}

func TestStaleResultsAreIgnored(t *testing.T) {
	m := started(t, testClient(t, "https://idp.example.com", false, ""), 80, 24)
	first := m.attempt
	m.Update(resultMsg{attempt: first, err: operator.ErrAccessDenied})
	m.Update(keyPress('r'))
	if m.attempt == first || m.screen != screenStarting {
		t.Fatalf("r did not start a new attempt: attempt %d screen %d", m.attempt, m.screen)
	}
	m.Update(resultMsg{attempt: first, session: &operator.Session{}})
	if _, ok := m.Done(); ok {
		t.Fatal("a result of the cancelled attempt signed in")
	}
}

func TestCountdownFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0:00", 59 * time.Second: "0:59", 5 * time.Minute: "5:00", time.Hour + 2*time.Minute + 3*time.Second: "1:02:03", -time.Second: "0:00",
	} {
		if got := countdown(d); got != want {
			t.Errorf("countdown(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCleanNeutralisesEscapes(t *testing.T) {
	if got := clean("Mallory\x1b]0;pwned\x07 <m@x>"); got != "Mallory�]0;pwned� <m@x>" {
		t.Errorf("clean = %q", got)
	}
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}
