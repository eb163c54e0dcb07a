package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// auditKinds are the kind filters `f` cycles through.
var auditKinds = []struct {
	name  string
	kinds []broker.AuditKind
}{
	{"all", nil},
	{"decisions", []broker.AuditKind{broker.AuditDecision, broker.AuditRequestRefused}},
	{"revocations", []broker.AuditKind{broker.AuditGrantRevoked, broker.AuditAgentRevoked, broker.AuditAllRevoked,
		broker.AuditFrozen, broker.AuditUnfrozen, broker.AuditAgentReleased}},
	{"requests", []broker.AuditKind{broker.AuditRequestSubmitted, broker.AuditRequestExpired,
		broker.AuditRequestCancelled, broker.AuditRequestThrottled, broker.AuditRequestRefused}},
	{"tokens", []broker.AuditKind{broker.AuditTokenIssued, broker.AuditGrantUsed, broker.AuditGrantExpired,
		broker.AuditGrantCompleted, broker.AuditKeyRotated}},
}

// auditPage shows the log newest first, with filters and the chain's
// verification status.
type auditPage struct {
	a       *app
	lay     paneLayout
	win     window
	entries []*broker.AuditEntry // newest first, as loaded
	shown   []int                // indexes of entries passing the filters
	filter  lineEdit
	editing bool
	kind    int
	more    bool // older entries remain
	dirty   bool // events arrived since the last load
	loading bool
	verify  *verifiedMsg
	loadErr error
	pane    paneScroll
}

func newAuditPage(a *app) *auditPage { return &auditPage{a: a, loading: true} }

func (p *auditPage) title() string   { return "Audit" }
func (p *auditPage) filtering() bool { return p.editing }

func (p *auditPage) setSize(w, h int) {
	p.lay = layoutFor(w, h)
	p.win.setHeight(p.lay.rows(1))
}

func (p *auditPage) onLoaded(m auditMsg) {
	p.loading = false
	p.loadErr = m.err
	if m.err != nil {
		return
	}
	if m.before == 0 {
		p.entries = m.entries
	} else {
		p.entries = append(p.entries, m.entries...)
	}
	p.more = len(m.entries) == auditPageSize
	p.refresh()
}

func (p *auditPage) onVerified(m verifiedMsg) { p.verify = &m }

// stale notes that the log grew; the page reloads its newest entries now
// if it is being looked at and otherwise when it is next shown.
func (p *auditPage) stale(shown bool) tea.Cmd {
	p.dirty = true
	if !shown || p.loading {
		return nil
	}
	p.loading = true
	p.dirty = false
	return loadAudit(p.a.ctx, p.a.b, 0)
}

func (p *auditPage) refresh() {
	q := strings.ToLower(strings.TrimSpace(p.filter.String()))
	kinds := auditKinds[p.kind].kinds
	p.shown = p.shown[:0]
	for i, e := range p.entries {
		if len(kinds) > 0 && !containsKind(kinds, e.Kind) {
			continue
		}
		if q != "" && !auditMatches(e, q) {
			continue
		}
		p.shown = append(p.shown, i)
	}
	p.win.setLen(len(p.shown))
}

func containsKind(ks []broker.AuditKind, k broker.AuditKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func auditMatches(e *broker.AuditEntry, q string) bool {
	for _, s := range []string{string(e.Kind), e.Actor, e.AgentID, e.RequestID, e.GrantID, e.Message} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func (p *auditPage) current() *broker.AuditEntry {
	if p.win.n == 0 || p.win.cursor >= len(p.shown) {
		return nil
	}
	return p.entries[p.shown[p.win.cursor]]
}

func (p *auditPage) update(msg tea.Msg) tea.Cmd {
	a, k := p.a, p.a.keys
	switch msg := msg.(type) {
	case mouseAt:
		p.win.mouse(msg.msg, msg.y-2)
	case tea.KeyPressMsg:
		if p.editing {
			p.editing = p.filter.editFilter(msg)
			p.refresh()
			return nil
		}
		if e := p.current(); e != nil && p.pane.onKey(msg, k, strconv.FormatUint(e.Seq, 10), p.lay.maxScroll(p.detail(p.lay.detW))) {
			return nil
		}
		if p.win.navigate(msg, k) {
			if p.win.cursor == p.win.n-1 && p.more && !p.loading {
				return p.loadMore()
			}
			return nil
		}
		switch {
		case key.Matches(msg, k.Filter):
			p.editing = true
		case key.Matches(msg, k.ClearFilter):
			p.filter.set("")
			p.kind = 0
			p.refresh()
		case key.Matches(msg, k.Kind):
			p.kind = (p.kind + 1) % len(auditKinds)
			p.refresh()
		case key.Matches(msg, k.Verify):
			p.verify = nil
			return verifyAudit(a.ctx, a.b, a.opts.Now)
		case key.Matches(msg, k.More):
			if p.more && !p.loading {
				return p.loadMore()
			}
		}
	}
	return nil
}

func (p *auditPage) loadMore() tea.Cmd {
	if len(p.entries) == 0 {
		return nil
	}
	p.loading = true
	return loadAudit(p.a.ctx, p.a.b, p.entries[len(p.entries)-1].Seq)
}

// chainStatus says whether the log's hash chain verifies.
func (p *auditPage) chainStatus() string {
	th := p.a.th
	switch {
	case p.verify == nil:
		return th.Muted.Render("chain: verifying…")
	case p.verify.err != nil:
		// Tampering and an unreadable log are different alarms.
		if ce, ok := errors.AsType[*broker.ChainError](p.verify.err); ok {
			return th.Error.Render(fmt.Sprintf("chain: BROKEN ✗ at entry %d: %s", ce.Seq, Neutralise(ce.Reason)))
		}
		return th.Warn.Render("chain: not verified: " + Neutralise(p.verify.err.Error()))
	}
	return th.OK.Render(fmt.Sprintf("chain: verified ✓ %d entries", p.verify.count)) +
		th.Muted.Render(" at "+p.verify.at.Local().Format("15:04:05"))
}

func (p *auditPage) view() string {
	a := p.a
	th := a.th
	w := p.lay.listW
	top := p.chainStatus() + th.Muted.Render("  ·  kind: "+auditKinds[p.kind].name)
	if p.editing || p.filter.String() != "" {
		f := p.filter.String()
		if p.editing {
			f = p.filter.view(24)
		}
		top += "  " + th.Strong.Render("/") + " " + f
	}
	list := []string{trunc(top, w)}
	hdr := "  " + col("SEQ", 7) + col("TIME", 9) + col("KIND", 18) + col("AGENT", 14) + "WHAT"
	list = append(list, th.Muted.Render(fit(hdr, w)))
	if p.loadErr != nil {
		list = append(list, th.Error.Render("  load: "+broker.ErrorMessage(p.loadErr)))
	} else if len(p.shown) == 0 {
		list = append(list, th.Muted.Render("  No entries match."))
	}
	from, to := p.win.visible()
	for i := from; i < to; i++ {
		e := p.entries[p.shown[i]]
		row := col(fmt.Sprint(e.Seq), 7) + col(e.At.Local().Format("15:04:05"), 9) + col(string(e.Kind), 18) +
			col(Neutralise(e.AgentID), 14) + Neutralise(e.Message)
		if i == p.win.cursor {
			list = append(list, th.Selected.Render(fit("▸ "+row, w)))
		} else {
			list = append(list, "  "+trunc(row, w-2))
		}
	}
	if p.more && to == p.win.n {
		list = append(list, th.Muted.Render("  … older entries: m loads more"))
	}
	scroll := 0
	if e := p.current(); e != nil {
		scroll = p.pane.at(strconv.FormatUint(e.Seq, 10))
	}
	return p.lay.joinAt(a, list, p.detail(p.lay.detW), "entry", scroll)
}

func (p *auditPage) detail(w int) []string {
	a := p.a
	th := a.th
	e := p.current()
	if e == nil {
		return []string{th.Muted.Render("Select an entry.")}
	}
	label := func(l string) string { return th.Muted.Render(fmt.Sprintf("%-9s", l)) }
	out := []string{
		th.Title.Render(fmt.Sprintf("Entry %d", e.Seq)) + "  " + string(e.Kind),
		label("At") + e.At.Local().Format("2006-01-02 15:04:05"),
		label("Actor") + Neutralise(e.Actor),
	}
	if e.Operator != nil {
		out = append(out, label("Operator")+Neutralise(e.Operator.Display()))
	}
	for _, f := range []struct{ l, v string }{{"Agent", e.AgentID}, {"Request", e.RequestID}, {"Grant", e.GrantID}, {"Token", e.JTI}} {
		if f.v != "" {
			out = append(out, label(f.l)+Neutralise(f.v))
		}
	}
	out = append(out, "", th.Title.Render("Message"))
	for _, l := range wrap(NeutraliseLines(e.Message), w-2) {
		out = append(out, "  "+l)
	}
	if len(e.Data) > 0 {
		out = append(out, "", th.Title.Render("Data"))
		for _, l := range wrap(Neutralise(string(e.Data)), w-2) {
			out = append(out, "  "+l)
		}
	}
	out = append(out, "", th.Muted.Render("hash "+shortHash(e.Hash)+" · prev "+shortHash(e.Prev)))
	return out
}

func (p *auditPage) help() helpKeys {
	k := p.a.keys
	s := []key.Binding{k.Kind, k.Verify}
	return helpKeys{short: s, full: [][]key.Binding{{k.Kind, k.Verify, k.More}}}
}
