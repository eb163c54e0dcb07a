package tui

import (
	"strconv"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// page is one tab of the console. The root gives it keys and mouse events
// only when no dialog is open, and tells it when the data changed.
type page interface {
	update(msg tea.Msg) tea.Cmd
	view() string
	setSize(w, h int)
	help() helpKeys
	title() string
	// filtering reports that the page's filter field has the keyboard.
	filtering() bool
	// refresh rebuilds the page's rows after the data changed.
	refresh()
}

// Page indexes, in tab order.
const (
	pagePending = iota
	pageGrants
	pageAgents
	pageAudit
	pagePolicy
)

// Model is the console's root model: construct it with New and run it with
// tea.NewProgram(m).Run().
type Model struct {
	a        *app
	pages    []page
	active   int
	width    int
	height   int
	help     help.Model
	fullHelp bool
	focused  bool
	armed    bool // `!` pressed once: the emergency panel is up
	events   <-chan broker.Event
	// early holds events that arrive before the snapshot they follow: they
	// are applied on top of it, never overwritten by it.
	early []broker.Event

	signIn    SignInScreen
	signingIn bool

	pending *pendingPage
	grants  *grantsPage
	agents  *agentsPage
	audit   *auditPage
	policy  *policyPage
}

// New returns the console over a backend.
func New(b Backend, opts Options) *Model {
	opts.defaults()
	a := &app{b: b, ctx: opts.Context, opts: opts, th: opts.Theme, keys: newKeyMap(), d: newData(), lastOp: opts.LastOperator}
	a.now = opts.Now()
	if opts.Session != nil {
		a.setSession(*opts.Session)
	}
	m := &Model{a: a, help: help.New(), focused: true, width: 80, height: 24}
	m.pending = newPendingPage(a)
	m.grants = newGrantsPage(a)
	m.agents = newAgentsPage(a)
	m.audit = newAuditPage(a)
	m.policy = newPolicyPage(a)
	m.pages = []page{m.pending, m.grants, m.agents, m.audit, m.policy}
	m.applyTheme()
	if a.session == nil && opts.SignIn != nil {
		m.signIn, m.signingIn = opts.SignIn(), true
	}
	m.resize(m.width, m.height)
	return m
}

// Init opens the event stream (then loads the picture), starts the clock
// and asks the terminal for its background colour.
func (m *Model) Init() tea.Cmd {
	a := m.a
	// The snapshot is loaded once the event stream is open (see
	// subscribedMsg), so no change can fall between the two.
	cmds := []tea.Cmd{
		subscribe(a.ctx, a.b),
		loadAudit(a.ctx, a.b, 0),
		verifyAudit(a.ctx, a.b, a.opts.Now),
		tick(a.opts.Tick),
		tea.RequestBackgroundColor,
	}
	if m.signingIn {
		cmds = append(cmds, m.signIn.Init())
	}
	return tea.Batch(cmds...)
}

func (m *Model) applyTheme() {
	th := m.a.th
	m.help.Styles.ShortKey, m.help.Styles.FullKey = th.HelpKey, th.HelpKey
	m.help.Styles.ShortDesc, m.help.Styles.FullDesc = th.HelpDesc, th.HelpDesc
	m.help.Styles.ShortSeparator, m.help.Styles.FullSeparator = th.HelpSep, th.HelpSep
	m.help.Styles.Ellipsis = th.HelpSep
}

// Update routes a message: data and results to the shared state, keys to
// the open dialog first, then global keys, then the active page.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	a := m.a
	a.now = a.opts.Now()
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case tea.BackgroundColorMsg:
		a.th = a.th.WithBackground(msg.IsDark())
		m.applyTheme()
		return m, nil
	case tea.FocusMsg:
		m.focused = true
		return m, nil
	case tea.BlurMsg:
		m.focused = false
		return m, nil
	case tickMsg:
		return m, m.onTick()
	case SessionMsg:
		m.startSession(msg.Session)
		return m, nil
	case PolicyMsg:
		m.onPolicy(msg)
		m.policy.onPolicy(msg, a.now)
		return m, nil
	case PolicyReplayMsg:
		m.onPolicyReplay(msg)
		m.policy.onReplay(msg)
		return m, nil
	case PolicyStatusMsg:
		m.policy.onStatus(msg)
		return m, nil
	case ConnectionMsg:
		m.onConnection(msg)
		return m, nil
	case SessionEndedMsg:
		a.sessionEnded = msg.Reason
		if a.sessionEnded == "" {
			a.sessionEnded = "signed out"
		}
		if a.session != nil {
			a.session.Expires = a.now
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.MouseMsg:
		return m, m.onMouse(msg)
	}
	if cmd, ok := m.onData(msg); ok {
		return m, cmd
	}
	if m.signingIn {
		return m, m.updateSignIn(msg)
	}
	return m, m.pages[m.active].update(msg)
}

// onKey handles a key press.
func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	a, k := m.a, m.a.keys
	s := msg.String()
	if s == "ctrl+c" {
		return tea.Quit
	}
	if m.armed {
		m.armed = false
		if s == "!" {
			a.say("revoking every grant and freezing issuance…")
			return revokeAll(a.ctx, a.b, a.revoker(), "emergency revoke-all from the console")
		}
		a.say("emergency revoke-all cancelled: nothing was revoked")
		return nil
	}
	if n := len(a.dialogs); n > 0 {
		top := a.dialogs[n-1]
		if s == "!" {
			if t, ok := top.(wantsText); !ok || !t.typing() {
				a.dialogs = a.dialogs[:0]
				return m.arm()
			}
		}
		done, cmd := top.update(a, msg)
		if done {
			a.dialogs = a.dialogs[:n-1]
		}
		return cmd
	}
	if m.signingIn {
		if s == "!" {
			return m.arm()
		}
		if _, ok := m.signIn.(cancellable); !ok && s == "esc" {
			m.putSignInAside()
			return nil
		}
		return m.updateSignIn(msg)
	}
	if m.pages[m.active].filtering() {
		return m.pages[m.active].update(msg)
	}
	switch {
	case s == "!":
		return m.arm()
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.fullHelp = !m.fullHelp
		m.resize(m.width, m.height)
		return nil
	case m.fullHelp && key.Matches(msg, k.Cancel):
		// esc closes the full help before anything else it might mean.
		m.fullHelp = false
		m.resize(m.width, m.height)
		return nil
	case key.Matches(msg, k.CopyID):
		return m.copyID()
	case key.Matches(msg, k.NextTab):
		return m.switchTo((m.active + 1) % len(m.pages))
	case key.Matches(msg, k.PrevTab):
		return m.switchTo((m.active + len(m.pages) - 1) % len(m.pages))
	case key.Matches(msg, k.Tab1, k.Tab2, k.Tab3, k.Tab4, k.Tab5):
		i, _ := strconv.Atoi(s)
		return m.switchTo(i - 1)
	case key.Matches(msg, k.Unfreeze):
		return m.askUnfreeze()
	case key.Matches(msg, k.SignIn):
		return m.startSignIn()
	}
	return m.pages[m.active].update(msg)
}

// switchTo changes the active page; each page keeps its cursor and filter.
func (m *Model) switchTo(i int) tea.Cmd {
	m.active = i
	if i != pageAudit {
		return nil
	}
	var cmds []tea.Cmd
	if m.audit.dirty {
		cmds = append(cmds, m.audit.stale(true))
	}
	// The chain status on show is at most half a minute old: the whole
	// chain is read again, so not on every event.
	if v := m.audit.verify; v != nil && m.a.opts.Now().Sub(v.at) > 30*time.Second {
		m.audit.verify = nil
		cmds = append(cmds, verifyAudit(m.a.ctx, m.a.b, m.a.opts.Now))
	}
	return tea.Batch(cmds...)
}

// arm raises the emergency panel; the next `!` fires, anything else cancels.
func (m *Model) arm() tea.Cmd {
	m.armed = true
	m.a.d.recount(m.a.now)
	return nil
}

// askUnfreeze confirms before letting issuance resume; it needs a live
// session, since unfreezing gives authority back.
func (m *Model) askUnfreeze() tea.Cmd {
	a := m.a
	if !a.d.issuer.Frozen {
		a.say("issuance is live; nothing to unfreeze")
		return nil
	}
	op, ok := a.operator()
	if !ok {
		why, _ := a.needSession("unfreezing")
		a.fail(why)
		return nil
	}
	a.push(&confirmDialog{
		title: "Unfreeze issuance?",
		body: "Approvals and token minting resume. Grants revoked while frozen stay revoked.\n" +
			"Unfreezing is audited under " + Neutralise(op.Display()) + ".",
		yes: "unfreeze",
		onYes: func(a *app) tea.Cmd {
			return unfreeze(a.ctx, a.b, op, "unfrozen from the console")
		},
	})
	return nil
}

// startSignIn shows the sign-in screen again, keeping every page's state.
func (m *Model) startSignIn() tea.Cmd {
	if m.a.opts.SignIn == nil {
		m.a.fail("sign in with `writ login` in another terminal; this console has no sign-in screen")
		return nil
	}
	m.signIn, m.signingIn = m.a.opts.SignIn(), true
	m.signIn.SetSize(m.width, m.bodyHeight())
	return m.signIn.Init()
}

// updateSignIn forwards a message to the sign-in screen and takes the
// session when it is done.
func (m *Model) updateSignIn(msg tea.Msg) tea.Cmd {
	cmd := m.signIn.Update(msg)
	if c, ok := m.signIn.(cancellable); ok && c.Cancelled() {
		m.putSignInAside()
		return cmd
	}
	if s, ok := m.signIn.Done(); ok {
		m.startSession(s)
		if f := m.a.opts.OnSession; f != nil {
			return tea.Batch(cmd, func() tea.Msg { f(s); return nil })
		}
	}
	return cmd
}

// cancellable is a sign-in screen that handles esc itself (tui/signin does).
type cancellable interface {
	Cancelled() bool
	Cancel()
}

// putSignInAside hides the sign-in screen; the console keeps working and
// L brings a fresh one back.
func (m *Model) putSignInAside() {
	if c, ok := m.signIn.(cancellable); ok {
		c.Cancel()
	}
	m.signingIn, m.signIn = false, nil
	m.a.say("sign-in put aside: revocation works; approvals need a session (L)")
}

func (m *Model) startSession(s Session) {
	m.a.setSession(s)
	m.signingIn, m.signIn = false, nil
	m.a.say("signed in as " + Neutralise(s.Operator.Display()))
}

// onTick advances countdowns and ages, drops stale toasts and ended grants,
// and notices an expired session.
func (m *Model) onTick() tea.Cmd {
	a := m.a
	kept := a.toasts[:0]
	for _, t := range a.toasts {
		if a.now.Before(t.until) {
			kept = append(kept, t)
		}
	}
	a.toasts = kept
	if a.session != nil && a.sessionEnded == "" && !a.session.Expires.IsZero() && !a.now.Before(a.session.Expires) {
		a.sessionEnded = "expired"
		a.fail("session expired: approvals paused · press L to sign in again; revocation still works")
	}
	if a.now.Sub(a.d.prunedAt) >= time.Minute && a.d.prune(a.now, a.opts.RecentGrants) {
		m.grants.refresh()
	}
	if !a.now.Before(a.d.nextExpiry) {
		// A grant just ran out: the counts change; nothing else does.
		a.d.recount(a.now)
		m.agents.refresh()
	}
	m.pending.expire()
	return tick(a.opts.Tick)
}

// onMouse selects on click and scrolls with the wheel, on the active page.
func (m *Model) onMouse(msg tea.MouseMsg) tea.Cmd {
	if !m.a.opts.Mouse || m.armed || len(m.a.dialogs) > 0 || m.signingIn {
		return nil
	}
	mm := msg.Mouse()
	if _, ok := msg.(tea.MouseClickMsg); ok && mm.Y == 1 {
		// The tab bar: find the tab under the pointer.
		x := 0
		for i, p := range m.pages {
			w := displayWidth(" "+p.title()+" ") + 1
			if mm.X >= x && mm.X < x+w {
				return m.switchTo(i)
			}
			x += w
		}
		return nil
	}
	return m.pages[m.active].update(mouseAt{msg: msg, y: mm.Y - m.bodyTop()})
}

// mouseAt is a mouse event with its row relative to the page body.
type mouseAt struct {
	msg tea.MouseMsg
	y   int
}

// resize lays the pages out again; their state is untouched.
func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w)
	for _, p := range m.pages {
		p.setSize(w, m.bodyHeight())
	}
	if m.signIn != nil {
		m.signIn.SetSize(w, m.bodyHeight())
	}
}
