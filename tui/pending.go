package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// arrivalFor is how long a live arrival stays highlighted.
const arrivalFor = 15 * time.Second

// pendingRow is one row of the queue: a request, a burst of near-identical
// requests from one agent folded into one row, or a member of an expanded
// burst.
type pendingRow struct {
	reqs   []*broker.TaskRequest
	burst  bool
	member bool
	key    string
	// Precomputed, neutralised text, so a keypress renders without
	// re-neutralising 10,000 intents.
	agent, intent, scopes string
	risk                  broker.Risk
}

// pendingPage is the queue, oldest first, with the detail of the selected
// request and the decide actions.
type pendingPage struct {
	a        *app
	w, h     int
	lay      paneLayout
	win      window
	rows     []pendingRow
	filter   lineEdit
	editing  bool
	expanded map[string]bool
	asked    map[string]bool // follow-ons whose parent grant was asked for
	selected string          // request id of the selected row, kept across rebuilds
}

func newPendingPage(a *app) *pendingPage {
	return &pendingPage{a: a, expanded: map[string]bool{}, asked: map[string]bool{}}
}

func (p *pendingPage) title() string   { return fmt.Sprintf("Pending %d", len(p.a.d.pending)) }
func (p *pendingPage) filtering() bool { return p.editing }

func (p *pendingPage) setSize(w, h int) {
	p.w, p.h = w, h
	p.relayout()
}

// relayout sizes the list to its rows (on narrow terminals) and the window
// to the list.
func (p *pendingPage) relayout() {
	p.lay = layoutFor(p.w, p.h).shrink(len(p.rows) + 1 + p.filterLines())
	p.win.setHeight(p.lay.rows(p.filterLines()))
}

func (p *pendingPage) filterLines() int {
	if p.editing || p.filter.String() != "" {
		return 1
	}
	return 0
}

// burstKey groups requests that differ only in digits and spacing of the
// intent: the same agent asking for the same thing over and over.
func burstKey(r *broker.TaskRequest) string {
	var b strings.Builder
	b.WriteString(r.AgentID)
	b.WriteByte(0)
	b.WriteString(r.Terms.Resource)
	b.WriteByte(0)
	sc := slices.Clone(r.Terms.Scopes)
	slices.Sort(sc)
	b.WriteString(strings.Join(sc, " "))
	b.WriteByte(0)
	for _, f := range strings.FieldsFunc(strings.ToLower(r.Intent), func(c rune) bool {
		return unicode.IsSpace(c) || unicode.IsDigit(c) || unicode.IsPunct(c)
	}) {
		b.WriteString(f)
		b.WriteByte(' ')
	}
	return b.String()
}

// refresh rebuilds the rows from the queue and the filter.
func (p *pendingPage) refresh() {
	d := p.a.d
	q := strings.ToLower(strings.TrimSpace(p.filter.String()))
	groups := map[string][]*broker.TaskRequest{}
	var order []string
	for _, r := range d.pending {
		if q != "" && !p.matches(r, q) {
			continue
		}
		k := burstKey(r)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	rows := p.rows[:0]
	for _, k := range order {
		g := groups[k]
		if len(g) >= p.a.opts.BurstSize {
			rows = append(rows, p.row(g, k, true, false))
			if p.expanded[k] {
				for _, r := range g {
					rows = append(rows, p.row([]*broker.TaskRequest{r}, k, false, true))
				}
			}
			continue
		}
		for _, r := range g {
			rows = append(rows, p.row([]*broker.TaskRequest{r}, k, false, false))
		}
	}
	p.rows = rows
	p.relayout()
	p.win.setLen(len(rows))
	p.reselect()
}

func (p *pendingPage) row(reqs []*broker.TaskRequest, k string, burst, member bool) pendingRow {
	d := p.a.d
	r := reqs[0]
	row := pendingRow{reqs: reqs, burst: burst, member: member, key: k,
		agent: Neutralise(r.AgentID), intent: Neutralise(r.Intent), risk: d.requestRisk(r)}
	sc := r.Terms.ResourceScopes()
	switch len(sc) {
	case 0:
		row.scopes = "(no scopes)"
	case 1:
		row.scopes = Neutralise(sc[0])
	default:
		row.scopes = fmt.Sprintf("%s +%d", Neutralise(highestScope(d, r.Terms)), len(sc)-1)
	}
	return row
}

// highestScope is the riskiest scope, the one the summary names.
func highestScope(d *data, t broker.Terms) string {
	best, risk := "", broker.Risk(-1)
	for _, s := range t.ResourceScopes() {
		if r := d.scopeInfo(t.Resource, s).Risk; r > risk {
			best, risk = s, r
		}
	}
	return best
}

func (p *pendingPage) matches(r *broker.TaskRequest, q string) bool {
	if strings.Contains(strings.ToLower(r.AgentID), q) || strings.Contains(strings.ToLower(r.Intent), q) ||
		strings.Contains(strings.ToLower(r.Terms.Resource), q) {
		return true
	}
	for _, s := range r.Terms.Scopes {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// reselect keeps the cursor on the same request after the rows changed.
func (p *pendingPage) reselect() {
	if p.selected == "" {
		p.remember()
		return
	}
	for i, row := range p.rows {
		if slices.ContainsFunc(row.reqs, func(r *broker.TaskRequest) bool { return r.ID == p.selected }) {
			if !row.burst || !p.expanded[row.key] {
				p.win.moveTo(i)
				return
			}
		}
	}
	p.remember()
}

func (p *pendingPage) remember() {
	if r := p.current(); r != nil {
		p.selected = r.reqs[0].ID
	}
}

// current is the selected row, or nil for an empty queue.
func (p *pendingPage) current() *pendingRow {
	if p.win.cursor < 0 || p.win.cursor >= len(p.rows) {
		return nil
	}
	return &p.rows[p.win.cursor]
}

// expire drops arrival highlights that have faded.
func (p *pendingPage) expire() {
	for id, t := range p.a.d.arrived {
		if p.a.now.Sub(t) > arrivalFor {
			delete(p.a.d.arrived, id)
		}
	}
}

// wantParent asks for the parent grant of the selected follow-on, once.
func (p *pendingPage) wantParent() tea.Cmd {
	row := p.current()
	if row == nil {
		return nil
	}
	r := row.reqs[0]
	if r.ParentID == "" || p.asked[r.ID] {
		return nil
	}
	p.asked[r.ID] = true
	return loadParent(p.a.ctx, p.a.b, r)
}

func (p *pendingPage) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return p.onKey(msg)
	case mouseAt:
		if p.win.mouse(msg.msg, msg.y-1-p.filterLines()) {
			p.remember()
			return p.wantParent()
		}
	}
	return nil
}

func (p *pendingPage) onKey(msg tea.KeyPressMsg) tea.Cmd {
	k := p.a.keys
	if p.editing {
		switch msg.String() {
		case "esc":
			p.editing = false
			p.filter.set("")
		case "enter":
			p.editing = false
		default:
			p.filter.update(msg)
		}
		p.refresh()
		return nil
	}
	if p.win.navigate(msg, k) {
		p.remember()
		return p.wantParent()
	}
	row := p.current()
	switch {
	case key.Matches(msg, k.Filter):
		p.editing = true
		p.relayout()
		return nil
	case key.Matches(msg, k.ClearFilter):
		if p.filter.String() != "" {
			p.filter.set("")
			p.refresh()
		}
		return nil
	case row == nil:
		return nil
	case key.Matches(msg, k.Expand):
		if row.burst || row.member {
			p.expanded[row.key] = !p.expanded[row.key]
			p.refresh()
		}
		return nil
	case key.Matches(msg, k.Approve):
		return p.approve(row)
	case key.Matches(msg, k.Narrow):
		return p.narrow(row)
	case key.Matches(msg, k.Deny):
		p.deny(row)
	}
	return nil
}

// canApprove says why approving is not possible now, if it is not.
func (p *pendingPage) canApprove(row *pendingRow, what string) (broker.Operator, bool) {
	a := p.a
	if row.burst {
		a.fail(fmt.Sprintf("a burst of %d near-identical requests: expand it (enter) to decide one, or d to deny them all", len(row.reqs)))
		return broker.Operator{}, false
	}
	if a.d.issuer.Frozen {
		a.fail("issuance is FROZEN: nothing can be " + what + " until someone unfreezes (U)")
		return broker.Operator{}, false
	}
	op, ok := a.operator()
	if !ok {
		why, _ := a.needSession("approvals")
		a.fail(why)
		return broker.Operator{}, false
	}
	return op, true
}

func (p *pendingPage) approve(row *pendingRow) tea.Cmd {
	a := p.a
	op, ok := p.canApprove(row, "approved")
	if !ok {
		return nil
	}
	r := row.reqs[0]
	risk := a.d.requestRisk(r)
	if risk < broker.RiskHigh && risk != 0 {
		return approve(a.ctx, a.b, op, r)
	}
	var sc []string
	for _, s := range r.Terms.ResourceScopes() {
		info := a.d.scopeInfo(r.Terms.Resource, s)
		sc = append(sc, fmt.Sprintf("  %s %s", riskTag(info.Risk), Neutralise(s)))
	}
	a.push(&confirmDialog{
		title:     fmt.Sprintf("Approve %s risk as asked?", strings.ToUpper(risk.String())),
		requestID: r.ID,
		body: fmt.Sprintf("%s asks for %s at %s for %s:\n%s\n\nIntent: %s",
			row.agent, plural(len(sc), "scope"), Neutralise(r.Terms.Resource), ttl(r.Terms.TTL),
			strings.Join(sc, "\n"), trunc(row.intent, 200)),
		yes: "approve as asked",
		onYes: func(a *app) tea.Cmd {
			return approve(a.ctx, a.b, op, r)
		},
	})
	return nil
}

func (p *pendingPage) narrow(row *pendingRow) tea.Cmd {
	op, ok := p.canApprove(row, "approved")
	if !ok {
		return nil
	}
	p.a.push(newNarrowDialog(p.a, op, row.reqs[0]))
	return nil
}

// denyPresets are the reasons an operator most often gives.
var denyPresets = []string{
	"not what the task is about",
	"asks for more than the task needs",
	"unexpected request: not approved by the team",
	"suspected compromise: investigating",
}

func (p *pendingPage) deny(row *pendingRow) {
	a := p.a
	reqs := row.reqs
	op := a.revoker() // a denial only ever removes access: it never waits for a sign-in
	body := fmt.Sprintf("Deny %s's request: %s", row.agent, trunc(row.intent, 120))
	title := "Deny request"
	if row.burst {
		title = fmt.Sprintf("Deny all %d requests of this burst", len(reqs))
		body = fmt.Sprintf("%s sent %d near-identical requests: %s", row.agent, len(reqs), trunc(row.intent, 100))
	}
	dlg := newReasonDialog(title, body+"\nThe agent is told the reason.", "deny", denyPresets, func(a *app, reason string) tea.Cmd {
		return deny(a.ctx, a.b, op, reqs, reason)
	})
	dlg.requestID = reqs[0].ID
	a.push(dlg)
}

func (p *pendingPage) help() helpKeys {
	k := p.a.keys
	return helpKeys{
		short: []key.Binding{k.Approve, k.Narrow, k.Deny},
		full:  [][]key.Binding{{k.Approve, k.Narrow, k.Deny, k.Expand}},
	}
}
