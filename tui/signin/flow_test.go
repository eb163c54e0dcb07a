package signin

import (
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
)

// runtime drives a Model as Bubble Tea would: every command runs on its own
// goroutine and its message comes back to Update. Timer messages (spinner
// and countdown) are dropped, so their loops end; the test waits for every
// command goroutine at cleanup.
type runtime struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
	wg   sync.WaitGroup
}

func newRuntime(t *testing.T, m *Model) *runtime {
	r := &runtime{t: t, m: m, msgs: make(chan tea.Msg, 64)}
	t.Cleanup(func() {
		m.Cancel()
		go func() { r.wg.Wait(); close(r.msgs) }()
		for range r.msgs {
		}
	})
	return r
}

func (r *runtime) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	r.wg.Go(func() { r.msgs <- cmd() })
}

// until feeds messages to the model until done says stop, and returns the
// message that stopped it.
func (r *runtime) until(done func(tea.Msg) bool) tea.Msg {
	r.t.Helper()
	deadline := time.After(time.Minute) // a hung flow fails rather than hangs
	for {
		select {
		case msg := <-r.msgs:
			switch msg := msg.(type) {
			case nil, spinner.TickMsg, tickMsg:
				continue
			case tea.BatchMsg:
				for _, c := range msg {
					r.exec(c)
				}
				continue
			}
			r.exec(r.m.Update(msg))
			if done(msg) {
				return msg
			}
		case <-deadline:
			r.t.Fatalf("sign-in flow stuck on screen %d", r.m.screen)
			return nil
		}
	}
}

func (r *runtime) untilScreen(s screen) {
	r.t.Helper()
	r.until(func(tea.Msg) bool { return r.m.screen == s })
}

func startIDP(t *testing.T, opts devidp.Options) *devidp.Provider {
	t.Helper()
	p, err := devidp.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func devClient(t *testing.T, issuer string, cfg operator.Config) *operator.Client {
	t.Helper()
	cfg.Issuer, cfg.ClientID, cfg.Dev = issuer, devidp.ClientID, true
	if cfg.OpenBrowser == nil {
		cfg.OpenBrowser = func(string) error { return errors.New("headless") }
	}
	c, err := operator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFlowDeviceSignsIn(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	msg := r.until(func(msg tea.Msg) bool { _, ok := msg.(SignedInMsg); return ok })
	s := msg.(SignedInMsg).Session
	if got, ok := m.Done(); !ok || got != s || !s.Operator.Dev || s.Operator.Name != "Dana Demo" {
		t.Fatalf("done %v, session %v", ok, s)
	}
	if v := ansi.Strip(m.View()); !strings.Contains(v, "Signed in as Dana Demo <dana@demo.writ.test>") {
		t.Errorf("view:\n%s", v)
	}
}

func TestFlowDeniedThenRetry(t *testing.T) {
	t.Parallel()
	var idp *devidp.Provider
	var codes atomic.Int32
	idp = startIDP(t, devidp.Options{OnDeviceCode: func(code string) {
		if codes.Add(1) == 1 {
			_ = idp.DenyDevice(code)
		} else {
			_ = idp.ApproveDevice(code, devidp.Dana)
		}
	}})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.untilScreen(screenDenied)
	if v := ansi.Strip(m.View()); !strings.Contains(v, "Sign-in denied") || !strings.Contains(v, "r try again") {
		t.Errorf("denied view:\n%s", v)
	}
	r.exec(m.Update(keyPress('r')))
	r.until(func(msg tea.Msg) bool { _, ok := msg.(SignedInMsg); return ok })
}

func TestFlowNotApprover(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Nico})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.untilScreen(screenNotApprover)
	v := ansi.Strip(m.View())
	for _, want := range []string{"Nico Nogroup", `not an approver: claim "groups" has ["dev","qa"], needs "writ-approvers"`} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestFlowCodeExpiredOffersRetry(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{DeviceCodeLifetime: time.Second})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.untilScreen(screenExpired)
	if v := ansi.Strip(m.View()); !strings.Contains(v, "r get a new code") {
		t.Errorf("expired view:\n%s", v)
	}
	first := m.attempt
	r.exec(m.Update(keyPress('r')))
	r.untilScreen(screenDevice)
	if m.attempt == first {
		t.Error("retry did not start a new attempt")
	}
}

func TestFlowEscStopsPolling(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.untilScreen(screenDevice)
	polling := m.attempt
	cmd := m.Update(escPress())
	if _, ok := cmd().(CancelledMsg); !ok || !m.Cancelled() {
		t.Fatal("esc did not cancel")
	}
	// The poll returns at once with the cancellation, and changes nothing.
	r.until(func(msg tea.Msg) bool { rm, ok := msg.(resultMsg); return ok && rm.attempt == polling })
	if !m.Cancelled() {
		t.Errorf("screen %d after the stopped poll returned", m.screen)
	}
}

func TestFlowUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	m := New(devClient(t, issuer, operator.Config{}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.untilScreen(screenUnreachable)
	if v := ansi.Strip(m.View()); !strings.Contains(v, "Cannot reach the identity provider") || !strings.Contains(v, issuer) {
		t.Errorf("view:\n%s", v)
	}
	r.exec(m.Update(keyPress('r')))
	r.untilScreen(screenUnreachable)
}

func TestFlowBrowserSignsIn(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	var browsers sync.WaitGroup
	t.Cleanup(browsers.Wait)
	// The "browser" follows the URL headlessly; the provider signs Dana in.
	open := func(u string) error {
		browsers.Go(func() {
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		})
		return nil
	}
	m := New(devClient(t, idp.Issuer(), operator.Config{Login: operator.LoginBrowser, OpenBrowser: open}), DefaultStyles())
	r := newRuntime(t, m)
	r.exec(m.Init())
	r.until(func(msg tea.Msg) bool { _, ok := msg.(SignedInMsg); return ok })
}

func TestFlowResumesRememberedSession(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	cfg := operator.Config{Remember: true, SessionPath: filepath.Join(t.TempDir(), "session.json")}
	first := New(devClient(t, idp.Issuer(), cfg), DefaultStyles())
	r := newRuntime(t, first)
	r.exec(first.Init())
	r.until(func(msg tea.Msg) bool { _, ok := msg.(SignedInMsg); return ok })

	// The next start signs in from the file, without a device code.
	second := New(devClient(t, idp.Issuer(), cfg), DefaultStyles())
	r2 := newRuntime(t, second)
	r2.exec(second.Init())
	r2.until(func(msg tea.Msg) bool {
		if _, ok := msg.(deviceStartedMsg); ok {
			t.Fatal("asked for a device code though a session was remembered")
		}
		_, ok := msg.(SignedInMsg)
		return ok
	})
}

// harness runs the screen as a whole program, the way the console embeds it.
type harness struct {
	m       *Model
	session *operator.Session
}

func (h harness) Init() tea.Cmd { return h.m.Init() }

func (h harness) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if s, ok := msg.(SignedInMsg); ok {
		h.session = s.Session
		return h, tea.Quit
	}
	return h, h.m.Update(msg)
}

func (h harness) View() tea.View { return tea.NewView(h.m.View()) }

func TestProgramSignsInDemoOperator(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	m := New(devClient(t, idp.Issuer(), operator.Config{}), DefaultStyles())
	tm := teatest.NewTestModel(t, harness{m: m}, teatest.WithInitialTermSize(80, 24))
	final := tm.FinalModel(t, teatest.WithFinalTimeout(time.Minute)).(harness)
	if final.session == nil || final.session.Operator.Email != "dana@demo.writ.test" {
		t.Fatalf("session %v", final.session)
	}
}

func TestRefreshCommand(t *testing.T) {
	t.Parallel()
	idp := startIDP(t, devidp.Options{AutoApprove: devidp.Dana})
	c := devClient(t, idp.Issuer(), operator.Config{Scopes: []string{"openid", "profile", "email", "offline_access"}})
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.WaitDevice(t.Context(), da)
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := Refresh(c, s)().(RefreshedMsg)
	if !ok || msg.Session.Operator != s.Operator {
		t.Fatalf("refresh: %#v", msg)
	}
	// Without offline_access there is no refresh token: the session ends.
	c2 := devClient(t, idp.Issuer(), operator.Config{})
	da2, _ := c2.StartDevice(t.Context())
	s2, err := c2.WaitDevice(t.Context(), da2)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := Refresh(c2, s2)().(RefreshFailedMsg); !ok || !errors.Is(f.Err, operator.ErrSessionEnded) {
		t.Fatalf("refresh without refresh token: %#v", f)
	}
}
