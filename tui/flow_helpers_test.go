package tui

import (
	"context"
	"strings"
	gosync "sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store/storetest"
	"github.com/writhq/writ/themes"
)

// clock is a settable clock shared by the broker and the console, so a
// test moves time instead of sleeping.
type clock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// probe wraps the console in a real Program and publishes each rendered
// screen, ANSI-stripped, so a flow waits for what the operator would see
// rather than for a length of time.
type probe struct {
	m      *Model
	mu     gosync.Mutex
	screen string
	change chan struct{}
}

func (p *probe) Init() tea.Cmd { return p.m.Init() }

func (p *probe) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := p.m.Update(msg)
	s := ansi.Strip(p.m.render())
	p.mu.Lock()
	p.screen = s
	p.mu.Unlock()
	select {
	case p.change <- struct{}{}:
	default:
	}
	return p, cmd
}

func (p *probe) View() tea.View { return p.m.View() }

func (p *probe) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.screen
}

// flow is a console running in a teatest Program.
type flow struct {
	t  *testing.T
	tm *teatest.TestModel
	p  *probe
}

// guard bounds how long a flow waits for the screen before failing; it is
// a hang detector, not a timing assertion.
const guard = 15 * time.Second

func startFlow(t *testing.T, b Backend, opts Options, w, h int) *flow {
	t.Helper()
	if opts.Theme == nil {
		opts.Theme = themes.Monochrome()
	}
	if opts.Context == nil {
		opts.Context = t.Context()
	}
	if opts.Tick == 0 {
		opts.Tick = time.Hour // flows send ticks themselves
	}
	p := &probe{m: New(b, opts), change: make(chan struct{}, 1)}
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(w, h))
	f := &flow{t: t, tm: tm, p: p}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(guard))
	})
	return f
}

// waitFor waits until the screen satisfies cond.
func (f *flow) waitFor(what string, cond func(screen string) bool) string {
	f.t.Helper()
	deadline := time.NewTimer(guard)
	defer deadline.Stop()
	for {
		s := f.p.current()
		if cond(s) {
			return s
		}
		select {
		case <-f.p.change:
		case <-deadline.C:
			f.t.Fatalf("screen never showed %s; last screen:\n%s", what, s)
		}
	}
}

// waitShow waits until the screen contains every string.
func (f *flow) waitShow(want ...string) string {
	f.t.Helper()
	return f.waitFor(strings.Join(want, " and "), func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
}

// waitGone waits until the screen no longer contains s.
func (f *flow) waitGone(s string) string {
	f.t.Helper()
	return f.waitFor("no "+s, func(scr string) bool { return !strings.Contains(scr, s) })
}

func (f *flow) keys(ks ...string) {
	for _, k := range ks {
		f.tm.Send(press(k))
	}
}

func (f *flow) typeText(s string) { f.tm.Type(s) }

// realBroker is a broker.Service over a temporary store with the fixture's
// configuration and a settable clock.
func realBroker(t *testing.T) (*broker.Service, *clock) {
	t.Helper()
	c := &clock{t: fixedNow}
	svc, err := broker.New(t.Context(), fixtureConfig(), storetest.MustOpen(t), broker.Options{
		Issuer: "https://writ.test", Now: c.Now, SubmitBurst: 100, SubmitRate: 100,
	})
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	return svc, c
}

// submit asks for a task as an agent would.
func submit(t *testing.T, svc *broker.Service, agent, intent, resource string, ttl time.Duration, scopes ...string) *broker.TaskRequest {
	t.Helper()
	r, err := svc.Submit(context.Background(), agent, broker.SubmitInput{LoginHint: "oncall", Intent: intent,
		Scopes: scopes, Resource: resource, TTL: ttl})
	if err != nil {
		t.Fatalf("submit %s: %v", intent, err)
	}
	return r
}

// approved makes an active grant through the broker.
func approved(t *testing.T, svc *broker.Service, agent, intent string, scopes ...string) *broker.Grant {
	t.Helper()
	r := submit(t, svc, agent, intent, "https://api.github.com", 15*time.Minute, scopes...)
	g, err := svc.Approve(context.Background(), priya, r.ID)
	if err != nil {
		t.Fatalf("approve %s: %v", intent, err)
	}
	return g
}

func session(c *clock) *Session { return &Session{Operator: priya, Expires: c.Now().Add(time.Hour)} }
