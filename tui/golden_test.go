package tui

import (
	"os"
	"strconv"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/themes"
)

func TestMain(m *testing.M) {
	// Golden files show clock times; pin the zone so they match anywhere.
	time.Local = time.UTC
	os.Unsetenv("NO_COLOR")
	os.Exit(m.Run())
}

// scene sets up one screen from the fixture.
type scene struct {
	name  string
	opts  func(*Options)
	setup func(f *fixture)
	msgs  []tea.Msg // sent before the keys, as cmd would
	keys  []string
}

// policyScene is what cmd tells the Policy page: the file, shadow hits
// and standing approvals.
var policyScene = []tea.Msg{
	PolicyMsg{File: "policy.yaml", Rules: 7},
	PolicyStatusMsg{File: "policy.yaml", Rules: 7, MaxStanding: 4 * time.Hour, At: fixedNow,
		ShadowHits: map[string]uint64{"would-deny-weekend-refunds": 2},
		Standing: []*broker.StandingApproval{
			{ID: "standing-7f3a9c2e", AgentID: "support-bot", CreatedBy: priya, CreatedAt: fixedNow.Add(-10 * time.Minute),
				ExpiresAt: fixedNow.Add(20 * time.Minute), Reason: "weekly customers query",
				Terms: broker.Terms{Scopes: []string{"customers:read"}, Resource: "https://db.internal/customers", TTL: 10 * time.Minute},
				Uses:  []broker.StandingUse{{RequestID: "req-q1", At: fixedNow.Add(-5 * time.Minute)}}},
			{ID: "standing-11aa22bb", AgentID: "reader-bot", CreatedBy: priya, CreatedAt: fixedNow.Add(-2 * time.Hour),
				ExpiresAt: fixedNow.Add(-time.Hour), Terms: broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://api.github.com"}},
		}},
}

var scenes = []scene{
	{name: "pending"},
	{name: "pending-follow-on", keys: []string{"G"}},
	{name: "pending-burst-expanded", keys: []string{"down", "down", "down", "enter"}},
	{name: "pending-filter", keys: []string{"/", "s", "u", "p"}},
	{name: "pending-empty", setup: func(f *fixture) { f.pending = nil }},
	{name: "grants", keys: []string{"2"}},
	{name: "grants-revoked", keys: []string{"2", "G"}},
	{name: "agents", keys: []string{"3"}},
	{name: "agents-quarantined", keys: []string{"3", "down"}, setup: func(f *fixture) {
		f.agents[1].State.Quarantined = true
		f.agents[1].State.EpochAt = fixedNow.Add(-2 * time.Minute)
	}},
	{name: "audit", keys: []string{"4"}},
	{name: "help", keys: []string{"?"}},
	{name: "frozen", setup: func(f *fixture) {
		f.issuer.Frozen, f.issuer.FrozenBy, f.issuer.FrozenAt = true, &priya, fixedNow.Add(-time.Minute)
	}},
	{name: "session-expired", opts: func(o *Options) {
		o.Session = &Session{Operator: priya, Expires: fixedNow.Add(-time.Second)}
	}},
	{name: "sign-in", opts: func(o *Options) {
		o.Session = nil
		o.SignIn = func() SignInScreen { return &fakeSignIn{} }
	}},
	{name: "dialog-approve-confirm", keys: []string{"a"}},
	{name: "dialog-narrow", keys: []string{"n", "down", "space", "down", "down", "down", "left", "left", "left", "down", "left"}},
	{name: "dialog-deny", keys: []string{"d", "n", "o", "t", " ", "n", "o", "w"}},
	{name: "dialog-deny-burst", keys: []string{"down", "down", "down", "d"}},
	{name: "dialog-revoke", keys: []string{"2", "down", "r"}},
	{name: "dialog-revoke-agent", keys: []string{"2", "down", "R"}},
	{name: "dialog-quarantine", keys: []string{"3", "x"}},
	{name: "dialog-emergency", keys: []string{"2", "!"}},
	{name: "policy", msgs: policyScene, keys: []string{"5"}},
	{name: "policy-empty", keys: []string{"5"}},
	{name: "dialog-standing", msgs: policyScene, keys: []string{"down", "down", "s", "right"}},
	{name: "dialog-revoke-standing", msgs: policyScene, keys: []string{"5", "r"}},
	{name: "dialog-unfreeze", keys: []string{"U"}, setup: func(f *fixture) {
		f.issuer.Frozen, f.issuer.FrozenBy, f.issuer.FrozenAt = true, &priya, fixedNow.Add(-time.Minute)
	}},
}

// goldenThemes are the themes every screen is captured in.
var goldenThemes = []struct {
	name  string
	theme func() *themes.Theme
}{
	{"default-dark", func() *themes.Theme { return themes.Default(true) }},
	{"default-light", func() *themes.Theme { return themes.Default(false) }},
	{"high-contrast", func() *themes.Theme { return themes.HighContrast(true) }},
	{"monochrome", themes.Monochrome},
}

// TestGolden renders every page and dialog at 80×24 and 160×48 in each
// theme and compares the ANSI-stripped screen with testdata/TestGolden.
// Regenerate with `go test ./tui -run TestGolden -update`.
func TestGolden(t *testing.T) {
	for _, th := range goldenThemes {
		for _, size := range [][2]int{{80, 24}, {160, 48}} {
			for _, sc := range scenes {
				name := th.name + "/" + sc.name + "-" + strconv.Itoa(size[0]) + "x" + strconv.Itoa(size[1])
				t.Run(name, func(t *testing.T) {
					f := newFixture()
					if sc.setup != nil {
						sc.setup(f)
					}
					opts := Options{Theme: th.theme()}
					if sc.opts != nil {
						sc.opts(&opts)
					}
					s := newSync(t, f.backend(), opts, size[0], size[1])
					for _, m := range sc.msgs {
						s.send(m)
					}
					s.keys(sc.keys...)
					golden.RequireEqual(t, s.screen())
				})
			}
		}
	}
	t.Run("too-small", func(t *testing.T) {
		s := newSync(t, newFixture().backend(), Options{}, 50, 12)
		golden.RequireEqual(t, s.screen())
	})
}

// fakeSignIn stands in for tui/signin: it shows a device code and is done
// when it gets signInDone.
type fakeSignIn struct {
	w, h int
	done bool
}

type signInDone struct{}

func (f *fakeSignIn) Init() tea.Cmd { return nil }
func (f *fakeSignIn) Update(msg tea.Msg) tea.Cmd {
	if _, ok := msg.(signInDone); ok {
		f.done = true
	}
	return nil
}
func (f *fakeSignIn) View() string {
	return "Sign in to approve\n\nOpen https://idp.example.com/device and enter WDJB-MJHT\n(waiting for the identity provider…)"
}
func (f *fakeSignIn) SetSize(w, h int) { f.w, f.h = w, h }
func (f *fakeSignIn) Done() (Session, bool) {
	return Session{Operator: priya, Expires: fixedNow.Add(time.Hour)}, f.done
}
