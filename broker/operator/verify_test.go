package operator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// TestVerificationRefusesBadIDTokens runs each hand-crafted bad ID token
// through both flows: the fake provider signs whatever the case asks for.
func TestVerificationRefusesBadIDTokens(t *testing.T) {
	t.Parallel()
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		edit   func(f *fakeOP, m map[string]any)
		flows  []string
		errHas string // what the message must say
		notApp bool   // a *NotApproverError rather than a *VerifyError
	}{
		{name: "wrong audience", edit: func(_ *fakeOP, m map[string]any) { m["aud"] = "another-client" }, errHas: "audience"},
		{name: "wrong issuer", edit: func(_ *fakeOP, m map[string]any) { m["iss"] = "https://idp.example.com" }, errHas: "issued by a different provider"},
		{name: "expired", edit: func(f *fakeOP, m map[string]any) { m["exp"] = f.now.Add(-time.Minute).Unix() }, errHas: "expired"},
		{name: "bad signature", edit: func(f *fakeOP, _ map[string]any) { f.signer = otherKey }, errHas: "signature"},
		{name: "wrong nonce", edit: func(_ *fakeOP, m map[string]any) { m["nonce"] = "replayed" }, flows: []string{LoginBrowser}, errHas: "nonce"},
		{name: "missing nonce", edit: func(_ *fakeOP, m map[string]any) { delete(m, "nonce") }, flows: []string{LoginBrowser}, errHas: "nonce"},
		{name: "at_hash mismatch", edit: func(_ *fakeOP, m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, errHas: "at_hash"},
		{name: "several audiences without azp", edit: func(_ *fakeOP, m map[string]any) { m["aud"] = []string{fakeClientID, "other"} }, errHas: "azp"},
		{name: "azp of another client", edit: func(_ *fakeOP, m map[string]any) { m["azp"] = "other" }, errHas: "azp"},
		{name: "missing group", edit: func(_ *fakeOP, m map[string]any) { m["groups"] = []string{"dev", "qa"} }, notApp: true,
			errHas: `not an approver: claim "groups" has ["dev","qa"], needs "writ-approvers"`},
		{name: "no groups claim", edit: func(_ *fakeOP, m map[string]any) { delete(m, "groups") }, notApp: true,
			errHas: `not an approver: the ID token has no claim "groups", needs "writ-approvers"`},
		{name: "groups by reference", edit: func(_ *fakeOP, m map[string]any) {
			delete(m, "groups")
			m["_claim_names"] = map[string]any{"groups": "src1"}
			m["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.example.com/me/getMemberObjects"}}
		}, notApp: true, errHas: "by reference"},
	}
	for _, tc := range cases {
		flows := tc.flows
		if flows == nil {
			flows = []string{LoginDevice, LoginBrowser}
		}
		for _, flow := range flows {
			t.Run(tc.name+"/"+flow, func(t *testing.T) {
				t.Parallel()
				f := newFakeOP(t)
				f.set(func(f *fakeOP) { f.claims = func(m map[string]any) { tc.edit(f, m) } })
				c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: flow})
				_, err := signIn(t, c)
				var ve *VerifyError
				var na *NotApproverError
				switch {
				case err == nil:
					t.Fatal("signed in with a bad ID token")
				case tc.notApp && !errors.As(err, &na):
					t.Fatalf("err = %v, want *NotApproverError", err)
				case !tc.notApp && !errors.As(err, &ve):
					t.Fatalf("err = %v, want *VerifyError", err)
				case !strings.Contains(err.Error(), tc.errHas):
					t.Fatalf("err = %q, want it to say %q", err, tc.errHas)
				}
			})
		}
	}
}

func TestVerificationAcceptsAZPWithSeveralAudiences(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) {
		f.claims = func(m map[string]any) { m["aud"], m["azp"] = []string{fakeClientID, "other"}, fakeClientID }
	})
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	if _, err := signIn(t, c); err != nil {
		t.Fatal(err)
	}
}

func TestNestedGroupsClaim(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) {
		f.claims = func(m map[string]any) {
			delete(m, "groups")
			m["realm_access"] = map[string]any{"roles": []string{"offline_access", "oncall"}}
		}
	})
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser,
		GroupsClaim: "realm_access.roles", ApproverGroup: "oncall"})
	s, err := signIn(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Operator.AuthTime.IsZero() || s.Operator.Name != "Priya Patel" {
		t.Errorf("operator = %+v", s.Operator)
	}
}

func TestLookupClaim(t *testing.T) {
	t.Parallel()
	claims := map[string]any{
		"groups":                     []any{"a", "b"},
		"role":                       "approver",
		"cognito:groups":             []any{"writ-approvers"},
		"https://example.com/groups": []any{"x"},
		"realm_access":               map[string]any{"roles": []any{"r1", 7, "r2"}},
		"resource_access":            map[string]any{"writ": map[string]any{"roles": []any{"approve"}}},
		"realm_access.roles":         []any{"literal-wins"},
		"number":                     3,
	}
	cases := []struct {
		path  string
		found bool
		want  []string
	}{
		{"groups", true, []string{"a", "b"}},
		{"role", true, []string{"approver"}},
		{"cognito:groups", true, []string{"writ-approvers"}},
		{"https://example.com/groups", true, []string{"x"}},
		{"realm_access.roles", true, []string{"literal-wins"}},
		{"resource_access.writ.roles", true, []string{"approve"}},
		{"resource_access.other.roles", false, nil},
		{"number", true, nil},
		{"missing", false, nil},
		{"role.sub", false, nil},
	}
	for _, tc := range cases {
		v, found := lookupClaim(claims, tc.path)
		got := claimStrings(v)
		if found != tc.found || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: found %v %v, want %v %v", tc.path, found, got, tc.found, tc.want)
		}
	}
	if got := claimStrings(claims["realm_access"].(map[string]any)["roles"]); strings.Join(got, ",") != "r1,r2" {
		t.Errorf("non-strings kept: %v", got)
	}
}

func TestRememberedSessionResumes(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.refreshToken = "rt-1" })
	path := filepath.Join(t.TempDir(), "writ", "session.json")
	cfg := Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser, Remember: true, SessionPath: path}
	c := newTestClient(t, cfg)
	s, err := signIn(t, c)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", info.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), s.IDToken()) {
		t.Error("session file lacks the ID token")
	}

	// A new start resumes it, verified again.
	c2 := newTestClient(t, cfg)
	rs, err := c2.Resume(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Operator != s.Operator || !rs.Expiry.Equal(s.Expiry) {
		t.Errorf("resumed %+v until %v, want %+v until %v", rs.Operator, rs.Expiry, s.Operator, s.Expiry)
	}

	// Expired: resumed by refreshing.
	later := f.now.Add(2 * time.Hour)
	f.set(func(f *fakeOP) { f.now = later })
	cfg3 := cfg
	cfg3.Now = func() time.Time { return later }
	rs3, err := newTestClient(t, cfg3).Resume(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !rs3.Expiry.After(later) {
		t.Errorf("refreshed on resume until %v, want after %v", rs3.Expiry, later)
	}

	// Readable by others: refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newTestClient(t, cfg).Resume(t.Context()); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("err = %v, want a refusal of a world-readable file", err)
	}
}

func TestResumeWithoutRememberedSession(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	path := filepath.Join(t.TempDir(), "session.json")
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Remember: true, SessionPath: path})
	if _, err := c.Resume(t.Context()); !errors.Is(err, ErrNoSession) {
		t.Fatalf("err = %v, want ErrNoSession", err)
	}
	c2 := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID})
	if _, err := c2.Resume(t.Context()); !errors.Is(err, ErrNoSession) {
		t.Fatalf("remember off: err = %v, want ErrNoSession", err)
	}
}

func TestExpiredRememberedSessionWithoutRefreshEnds(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	path := filepath.Join(t.TempDir(), "session.json")
	cfg := Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser, Remember: true, SessionPath: path}
	if _, err := signIn(t, newTestClient(t, cfg)); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(3 * time.Hour)
	cfg.Now = func() time.Time { return later }
	if _, err := newTestClient(t, cfg).Resume(t.Context()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ended session file kept: %v", err)
	}
}

func TestSessionNeverPrintsTokens(t *testing.T) {
	t.Parallel()
	f := newFakeOP(t)
	c := newTestClient(t, Config{Issuer: f.issuer(), ClientID: fakeClientID, Login: LoginBrowser})
	s, err := signIn(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		b.WriteString(sprintf(format, s))
		b.WriteString(sprintf(format, *s))
	}
	if out := b.String(); strings.Contains(out, s.IDToken()[:20]) || strings.Contains(out, f.accessToken) {
		t.Errorf("a token leaked into formatted output: %s", out)
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Issuer: "https://idp.example.com", ClientID: "writ"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Login() != LoginDevice || c.GroupsClaim() != "groups" || c.ApproverGroup() != "writ-approvers" {
		t.Errorf("defaults: %s %s %s", c.Login(), c.GroupsClaim(), c.ApproverGroup())
	}
	c, _ = New(Config{Issuer: "https://idp.example.com", ClientID: "writ", Scopes: ParseScopes("profile, groups")})
	if got := strings.Join(c.cfg.Scopes, " "); got != "openid profile groups" {
		t.Errorf("scopes = %q", got)
	}
	for _, bad := range []Config{
		{ClientID: "writ"},
		{Issuer: "https://idp.example.com"},
		{Issuer: "http://idp.example.com", ClientID: "writ"},
		{Issuer: "idp.example.com", ClientID: "writ"},
		{Issuer: "https://idp.example.com", ClientID: "writ", Login: "sms"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	if got := broker.ErrorCode(ErrDeviceCodeExpired); got != broker.EEXPIRED {
		t.Errorf("code %q", got)
	}
}

// signIn runs the client's configured flow against the fake provider, which
// approves at once.
func signIn(t testing.TB, c *Client) (*Session, error) {
	t.Helper()
	if c.Login() == LoginDevice {
		da, err := c.StartDevice(t.Context())
		if err != nil {
			return nil, err
		}
		return c.WaitDevice(t.Context(), da)
	}
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		return nil, err
	}
	browse(t, ba.URL, "", "")
	return c.WaitBrowser(t.Context(), ba)
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }
