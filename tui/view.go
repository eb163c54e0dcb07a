package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Below this the console shows a notice instead of a layout that would
// cut off what an operator must read.
const minWidth, minHeight = 60, 15

// View renders the console.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.ReportFocus = true
	v.WindowTitle = m.windowTitle()
	if m.a.opts.Mouse {
		v.MouseMode = tea.MouseModeCellMotion
	}
	return v
}

// windowTitle counts the queue, so a glance at the taskbar tells.
func (m *Model) windowTitle() string {
	t := "writ"
	if n := m.a.pendingCount(); n > 0 {
		t = fmt.Sprintf("(%d) writ · %s pending", n, plural(n, "request"))
	}
	if m.a.d.issuer.Frozen {
		t += " · FROZEN"
	}
	return t
}

// render draws the whole screen as text.
func (m *Model) render() string {
	if m.width < minWidth || m.height < minHeight {
		return m.tooSmall()
	}
	parts := []string{m.header(), m.tabs()}
	if b := m.banner(); b != "" {
		parts = append(parts, b)
	}
	parts = append(parts, m.body(), m.toastLine(), m.helpBar())
	return strings.Join(parts, "\n")
}

func (m *Model) tooSmall() string {
	msg := fmt.Sprintf("terminal too small: %d×%d\nwrit needs at least %d×%d\n\n! still revokes everything", m.width, m.height, minWidth, minHeight)
	if m.armed {
		msg = "EMERGENCY ARMED\npress ! again to revoke everything\nany other key cancels"
	}
	return lipgloss.Place(max(m.width, 1), max(m.height, 1), lipgloss.Center, lipgloss.Center, m.a.th.Warn.Render(msg))
}

// bodyTop is the screen row where the page body starts.
func (m *Model) bodyTop() int { return 2 + m.bannerLines() }

// bodyHeight is how many rows the page gets.
func (m *Model) bodyHeight() int {
	h := m.height - 2 - 1 - m.helpHeight() - m.bannerLines() // header, tabs, toast, help, banners
	return max(h, 1)
}

// bannerLines is how many banner lines show: FROZEN or no session, and a
// policy file that did not reload.
func (m *Model) bannerLines() int {
	n := 0
	if m.bannerShown() {
		n++
	}
	if m.a.policyErr != "" {
		n++
	}
	if m.a.d.storeBanner != "" {
		n++
	}
	if m.a.policyReplay != "" {
		n++
	}
	return n
}

func (m *Model) helpHeight() int {
	if !m.fullHelp {
		return 1
	}
	return 7
}

func (m *Model) bannerShown() bool {
	a := m.a
	_, live := a.operator()
	return a.d.issuer.Frozen || !live
}

// header: who, how long the session lasts, LIVE or FROZEN, where agents
// connect, and the counts.
func (m *Model) header() string {
	a, th := m.a, m.a.th
	// The state comes first when space is short: LIVE or FROZEN, and a
	// lost server, are what an operator must never lose sight of.
	state := th.Live.Render("● LIVE")
	if a.d.issuer.Frozen {
		state = th.Frozen.Render(" FROZEN ")
	}
	var conn string
	if a.opts.Remote && a.disconnected != "" {
		conn = th.Warn.Render("DISCONNECTED · reconnecting")
	}
	var who []string
	if op, ok := a.operator(); ok {
		s := Neutralise(op.Display())
		if op.Dev {
			s += " (dev)"
		}
		who = append(who, th.Strong.Render(s))
		if !a.session.Expires.IsZero() {
			who = append(who, th.Muted.Render("session "+short(a.session.Expires.Sub(a.now))))
		}
	} else {
		who = append(who, th.Warn.Render("NOT SIGNED IN"))
	}
	left := append([]string{th.Header.Render("writ")}, who...)
	left = append(left, state)
	if conn != "" {
		left = append(left, conn)
	}
	if a.opts.APIAddr != "" {
		label := "api "
		if a.opts.Remote {
			label = "server "
		}
		left = append(left, th.Muted.Render(label+a.opts.APIAddr))
	}
	right := th.Muted.Render(fmt.Sprintf("%d pending · %s · %s",
		len(a.d.pending), plural(a.d.activeGrants, "active grant"), plural(len(a.d.agents), "agent")))
	l := strings.Join(left, "  ")
	if displayWidth(l)+2+displayWidth(right) <= m.width {
		return l + strings.Repeat(" ", m.width-displayWidth(l)-displayWidth(right)) + right
	}
	if displayWidth(l) <= m.width {
		return l
	}
	// Too narrow for everything: the state first, then who.
	first := []string{th.Header.Render("writ"), state}
	if conn != "" {
		first = append(first, conn)
	}
	return trunc(strings.Join(append(first, who...), "  "), m.width)
}

// tabs: the five pages, the active one in reverse video and brackets.
func (m *Model) tabs() string {
	th := m.a.th
	var b strings.Builder
	for i, p := range m.pages {
		if i == m.active {
			b.WriteString(th.TabActive.Render("[" + p.title() + "]"))
		} else {
			b.WriteString(th.TabInactive.Render(" " + p.title() + " "))
		}
		b.WriteString(" ")
	}
	return fit(b.String(), m.width)
}

// banner says FROZEN, or that approvals are paused without a session,
// and that the policy file did not reload.
func (m *Model) banner() string {
	a, th := m.a, m.a.th
	var lines []string
	if m.bannerShown() {
		lines = append(lines, m.stateBanner())
	}
	if a.d.storeBanner != "" {
		lines = append(lines, th.Banner.Render(fit(a.d.storeBanner, m.width)))
	}
	if a.policyErr != "" {
		lines = append(lines, th.Banner.Render(fit(" POLICY NOT RELOADED (the last good policy stays in force): "+a.policyErr, m.width)))
	}
	if a.policyReplay != "" {
		lines = append(lines, m.policyReplayBanner())
	}
	return strings.Join(lines, "\n")
}

// stateBanner says FROZEN, or that approvals are paused without a session.
func (m *Model) stateBanner() string {
	a, th := m.a, m.a.th
	var s string
	if a.d.issuer.Frozen {
		s = " FROZEN: no approvals take effect and no tokens are minted"
		if by := a.d.issuer.FrozenBy; by != nil {
			s += " · by " + Neutralise(by.Display())
		}
		if !a.d.issuer.FrozenAt.IsZero() {
			s += " at " + a.d.issuer.FrozenAt.Local().Format("15:04:05")
		}
		s += " · U to unfreeze"
	} else {
		why, _ := a.needSession("approvals")
		s = " " + strings.ToUpper(why[:1]) + why[1:] + " · revocation works"
	}
	return th.Banner.Render(fit(s, m.width))
}

// body is the active page, or the emergency panel, or a dialog over the page.
func (m *Model) body() string {
	h := m.bodyHeight()
	if m.armed {
		return m.emergencyPanel(h)
	}
	if m.signingIn {
		return lines(strings.Split(m.signIn.View(), "\n"), m.width, h)
	}
	base := m.pages[m.active].view()
	if n := len(m.a.dialogs); n > 0 {
		return overlay(base, m.a.dialogs[n-1].view(m.a, m.width), m.width, h)
	}
	return base
}

// overlay draws a dialog centred over the page, which stays visible
// around it for context.
func overlay(base, dlg string, w, h int) string {
	bl := strings.Split(base, "\n")
	dl := strings.Split(dlg, "\n")
	if len(dl) > h {
		dl = append(dl[:h-1], dl[len(dl)-1]) // keep the frame's bottom edge
	}
	dw := 0
	for _, l := range dl {
		dw = max(dw, displayWidth(l))
	}
	x, y := max((w-dw)/2, 0), max((h-len(dl))/2, 0)
	for len(bl) < h {
		bl = append(bl, "")
	}
	for i, l := range dl {
		row := padRight(bl[y+i], w)
		bl[y+i] = ansi.Truncate(row, x, "") + "\x1b[m" + padRight(l, dw) + "\x1b[m" + ansi.TruncateLeft(row, x+dw, "")
	}
	return strings.Join(bl[:h], "\n")
}

// emergencyPanel says exactly what the second `!` will do, with real counts.
func (m *Model) emergencyPanel(h int) string {
	a, th := m.a, m.a.th
	d := a.d
	what := fmt.Sprintf("revoke %s of %s and stop issuing", plural(d.activeGrants, "grant"), plural(d.activeAgents, "agent"))
	if d.issuer.Frozen {
		what = fmt.Sprintf("revoke %s of %s (issuance is already frozen)", plural(d.activeGrants, "grant"), plural(d.activeAgents, "agent"))
	}
	who := Neutralise(a.revoker().Display())
	if _, ok := a.operator(); !ok {
		who += " (last signed-in operator; no live session needed)"
	}
	rows := []string{
		"",
		"  ⚠  EMERGENCY: REVOKE EVERYTHING",
		"",
		"  Pressing ! again will " + what + ".",
		"",
		"  Every resource server refuses those tokens within a second. Pending requests",
		"  stay pending but nothing is approved or minted until someone unfreezes (U).",
		"  Audited under " + who + ".",
		"",
		"  !  FIRE: revoke all and freeze",
		"  any other key  cancel (nothing happens)",
		"",
	}
	var b strings.Builder
	for i := 0; i < h; i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		line := ""
		if i < len(rows) {
			line = rows[i]
		}
		b.WriteString(th.Emergency.Render(fit(line, m.width-2)))
	}
	return b.String()
}

// toastLine is the newest message, or an empty line.
func (m *Model) toastLine() string {
	a := m.a
	if len(a.toasts) == 0 {
		return strings.Repeat(" ", m.width)
	}
	t := a.toasts[len(a.toasts)-1]
	if t.err {
		return a.th.ToastError.Render(fit("✗ "+t.text, m.width))
	}
	return a.th.Toast.Render(fit("✓ "+t.text, m.width))
}

// helpBar is the short help, or the full help after `?`.
func (m *Model) helpBar() string {
	keys := m.currentHelp()
	m.help.ShowAll = m.fullHelp
	if !m.fullHelp && displayWidth(m.help.ShortHelpView(keys.short)) > m.width {
		// Too narrow for every key: `!` goes first, so it is never the one cut.
		for i, b := range keys.short {
			if i > 0 && key.Matches(tea.KeyPressMsg{Code: '!', Text: "!"}, b) {
				keys.short = append([]bindingT{b}, append(keys.short[:i:i], keys.short[i+1:]...)...)
				break
			}
		}
	}
	s := m.help.View(keys)
	return lines(strings.Split(s, "\n"), m.width, m.helpHeight())
}

// currentHelp is the bindings of what has the keyboard now.
func (m *Model) currentHelp() helpKeys {
	a, k := m.a, m.a.keys
	switch {
	case m.armed:
		return helpKeys{short: []bindingT{bind("!", "FIRE revoke-all"), bind("any", "cancel")}}
	case len(a.dialogs) > 0:
		s := a.dialogs[len(a.dialogs)-1].help(a)
		return helpKeys{short: s, full: [][]bindingT{s}}
	case m.signingIn:
		return helpKeys{short: []bindingT{bind("esc", "later"), k.Emergency, k.Quit}}
	}
	h := m.pages[m.active].help()
	global := []bindingT{k.NextTab, k.Filter, k.Emergency, k.Help, k.Quit}
	if m.active == pageAgents || m.active == pagePolicy {
		// The agents and policy pages have no filter: do not offer one.
		global = []bindingT{k.NextTab, k.Emergency, k.Help, k.Quit}
	}
	if a.d.issuer.Frozen {
		global = append([]bindingT{k.Unfreeze}, global...)
	}
	if _, ok := a.operator(); !ok {
		global = append([]bindingT{k.SignIn}, global...)
	}
	h.short = append(h.short, global...)
	h.full = append(h.full,
		[]bindingT{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.CopyID},
		[]bindingT{k.NextTab, k.PrevTab, k.Tab1, k.Tab2, k.Tab3, k.Tab4, k.Tab5},
		[]bindingT{k.Filter, k.ClearFilter, k.Emergency, k.Unfreeze, k.SignIn, k.Help, k.Quit})
	return h
}
