// Package signin is the console's operator sign-in screen, a Bubble Tea v2
// component: the device flow (user code, verification URL, a QR code of the
// complete URL, a countdown, a spinner while it polls), the browser flow,
// and the screens for an expired or denied code, a person who is not an
// approver, and an unreachable provider. The flows run in broker/operator as
// tea.Cmds; Update only moves between screens.
package signin

import (
	"context"
	"errors"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker/operator"
)

// SignedInMsg is emitted once the operator has signed in and was verified.
type SignedInMsg struct{ Session *operator.Session }

// CancelledMsg is emitted when the operator leaves the screen with esc.
type CancelledMsg struct{}

// screen is what the component shows.
type screen int

const (
	screenStarting    screen = iota // contacting the provider
	screenDevice                    // code shown, polling
	screenBrowser                   // waiting for the browser to come back
	screenExpired                   // the code (or browser sign-in) expired
	screenDenied                    // the person or the provider refused
	screenNotApprover               // verified, but not in the approver group
	screenUnreachable               // the provider cannot be reached
	screenFailed                    // anything else: verification, configuration
	screenCancelled
	screenDone
)

// Model is the sign-in screen. Create it with New; it starts its flow in
// Init. It is used through its pointer, like the console's pages.
type Model struct {
	client *operator.Client
	styles Styles

	width, height int
	screen        screen
	attempt       int                // numbers each flow, so stale results are dropped
	ctx           context.Context    // the running attempt's; the model owns the flow
	cancel        context.CancelFunc // stops it
	device        *operator.DeviceAuth
	browser       *operator.BrowserAuth
	err           error
	session       *operator.Session
	now           time.Time
	spinner       spinner.Model
}

// New returns a sign-in screen for client, drawn with styles.
func New(client *operator.Client, styles Styles) *Model {
	return &Model{
		client:  client,
		styles:  styles,
		width:   80,
		height:  24,
		spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(styles.Spinner)),
		now:     client.Now(),
	}
}

// Messages of one flow attempt; results of an older attempt are ignored.
type (
	resumedMsg struct {
		attempt int
		session *operator.Session
		err     error
	}
	deviceStartedMsg struct {
		attempt int
		auth    *operator.DeviceAuth
		err     error
	}
	browserStartedMsg struct {
		attempt int
		auth    *operator.BrowserAuth
		err     error
	}
	resultMsg struct {
		attempt int
		session *operator.Session
		err     error
	}
	tickMsg struct{ attempt int }
)

// Init starts the flow: a remembered session first when the client keeps
// one, then the configured login.
func (m *Model) Init() tea.Cmd {
	return m.begin(m.client.Remember())
}

// begin starts a new attempt.
func (m *Model) begin(resume bool) tea.Cmd {
	m.Cancel()
	m.attempt++
	ctx, cancel := context.WithCancel(context.Background())
	m.ctx, m.cancel = ctx, cancel
	m.screen, m.err, m.device, m.browser = screenStarting, nil, nil, nil
	c, n := m.client, m.attempt
	var flow tea.Cmd
	switch {
	case resume:
		flow = func() tea.Msg {
			s, err := c.Resume(ctx)
			return resumedMsg{attempt: n, session: s, err: err}
		}
	case c.Login() == operator.LoginBrowser:
		flow = func() tea.Msg {
			ba, err := c.StartBrowser(ctx)
			return browserStartedMsg{attempt: n, auth: ba, err: err}
		}
	default:
		flow = func() tea.Msg {
			da, err := c.StartDevice(ctx)
			return deviceStartedMsg{attempt: n, auth: da, err: err}
		}
	}
	return tea.Batch(flow, m.spinner.Tick)
}

// Cancel stops the running flow, if any: its listener closes and its
// polling ends. The console calls it when it puts the screen aside.
func (m *Model) Cancel() {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
}

// SetSize sets the area the screen draws in.
func (m *Model) SetSize(width, height int) { m.width, m.height = width, height }

// Done returns the session once the operator has signed in.
func (m *Model) Done() (*operator.Session, bool) {
	return m.session, m.screen == screenDone
}

// Cancelled reports whether the operator left with esc.
func (m *Model) Cancelled() bool { return m.screen == screenCancelled }

// busy reports whether a flow is running and the spinner should turn.
func (m *Model) busy() bool {
	return m.screen == screenStarting || m.screen == screenDevice || m.screen == screenBrowser
}

// Update moves between screens. It does no I/O: the flows run as commands.
func (m *Model) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.SetSize(msg.Width, msg.Height)
	case tea.KeyPressMsg:
		return m.onKey(msg)
	case spinner.TickMsg:
		if !m.busy() {
			return nil // let the spinner's loop end
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return cmd
	case tickMsg:
		if msg.attempt != m.attempt || m.screen != screenDevice {
			return nil
		}
		m.now = m.client.Now()
		return m.tick()
	case resumedMsg:
		if msg.attempt != m.attempt {
			return nil
		}
		var ue *operator.UnreachableError
		switch {
		case msg.err == nil:
			return m.signedIn(msg.session)
		case errors.As(msg.err, &ue):
			return m.fail(msg.err)
		}
		// Nothing (usable) remembered: sign in afresh.
		return m.begin(false)
	case deviceStartedMsg:
		if msg.attempt != m.attempt {
			return nil
		}
		if msg.err != nil {
			return m.fail(msg.err)
		}
		m.screen, m.device, m.now = screenDevice, msg.auth, m.client.Now()
		return tea.Batch(m.waitDevice(), m.tick())
	case browserStartedMsg:
		if msg.attempt != m.attempt {
			return nil
		}
		if msg.err != nil {
			return m.fail(msg.err)
		}
		m.screen, m.browser = screenBrowser, msg.auth
		return m.waitBrowser()
	case resultMsg:
		if msg.attempt != m.attempt {
			return nil
		}
		if msg.err != nil {
			return m.fail(msg.err)
		}
		return m.signedIn(msg.session)
	}
	return nil
}

func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		m.Cancel()
		m.attempt++ // whatever the stopped flow still sends is stale
		m.screen = screenCancelled
		return func() tea.Msg { return CancelledMsg{} }
	case "r":
		if m.busy() || m.screen == screenDone {
			return nil
		}
		return m.begin(false)
	}
	return nil
}

func (m *Model) waitDevice() tea.Cmd {
	c, n, da := m.client, m.attempt, m.device
	ctx := m.ctx
	return func() tea.Msg {
		s, err := c.WaitDevice(ctx, da)
		return resultMsg{attempt: n, session: s, err: err}
	}
}

func (m *Model) waitBrowser() tea.Cmd {
	c, n, ba := m.client, m.attempt, m.browser
	ctx := m.ctx
	return func() tea.Msg {
		s, err := c.WaitBrowser(ctx, ba)
		return resultMsg{attempt: n, session: s, err: err}
	}
}

// tick re-arms the once-a-second countdown of the device screen.
func (m *Model) tick() tea.Cmd {
	n := m.attempt
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{attempt: n} })
}

func (m *Model) signedIn(s *operator.Session) tea.Cmd {
	m.Cancel()
	m.screen, m.session, m.err = screenDone, s, nil
	return func() tea.Msg { return SignedInMsg{Session: s} }
}

// fail shows the screen for err and ends the attempt.
func (m *Model) fail(err error) tea.Cmd {
	m.Cancel()
	m.err = err
	var na *operator.NotApproverError
	var ue *operator.UnreachableError
	switch {
	case errors.Is(err, context.Canceled):
		m.screen = screenCancelled
	case errors.As(err, &na):
		m.screen = screenNotApprover
	case errors.As(err, &ue):
		m.screen = screenUnreachable
	case errors.Is(err, operator.ErrDeviceCodeExpired), errors.Is(err, operator.ErrBrowserTimeout):
		m.screen = screenExpired
	case errors.Is(err, operator.ErrAccessDenied):
		m.screen = screenDenied
	default:
		m.screen = screenFailed
	}
	return nil
}
