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
	cache    map[*broker.TaskRequest]*reqInfo
	counts   map[string]int
	bursts   map[string][]*broker.TaskRequest
	selected string // request id of the selected row, kept across rebuilds
	pane     paneScroll
}

func newPendingPage(a *app) *pendingPage {
	return &pendingPage{a: a, expanded: map[string]bool{}, asked: map[string]bool{},
		cache: map[*broker.TaskRequest]*reqInfo{}, counts: map[string]int{}, bursts: map[string][]*broker.TaskRequest{}}
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

// reqInfo is what the queue precomputes once per request: its burst key,
// its lowercased search text and its neutralised row text.
type reqInfo struct {
	key, search string
	row         pendingRow
}

// info returns the cached row text of a request.
func (p *pendingPage) info(r *broker.TaskRequest) *reqInfo {
	if in, ok := p.cache[r]; ok {
		return in
	}
	in := &reqInfo{key: burstKey(r), row: p.row(r)}
	in.search = strings.ToLower(r.AgentID + "\x00" + r.Intent + "\x00" + r.Terms.Resource + "\x00" + strings.Join(r.Terms.Scopes, " "))
	p.cache[r] = in
	return in
}

// refresh rebuilds the rows from the queue and the filter. It runs on
// every change to the queue and every filter keystroke, so it allocates
// nothing per request once the request's text is cached.
func (p *pendingPage) refresh() {
	d := p.a.d
	if len(p.cache) > 2*len(d.pending)+1024 {
		clear(p.cache) // drop decided requests' text
	}
	q := strings.ToLower(strings.TrimSpace(p.filter.String()))
	clear(p.counts)
	for _, r := range d.pending {
		in := p.info(r)
		if q == "" || strings.Contains(in.search, q) {
			p.counts[in.key]++
		}
	}
	clear(p.bursts)
	for i, r := range d.pending {
		in := p.info(r)
		if p.counts[in.key] >= p.a.opts.BurstSize && (q == "" || strings.Contains(in.search, q)) {
			p.bursts[in.key] = append(p.bursts[in.key], d.pending[i])
		}
	}
	rows := p.rows[:0]
	for i, r := range d.pending {
		in := p.info(r)
		if q != "" && !strings.Contains(in.search, q) {
			continue
		}
		g, burst := p.bursts[in.key]
		if !burst {
			row := in.row
			row.reqs = d.pending[i : i+1 : i+1]
			rows = append(rows, row)
			continue
		}
		if g[0] != r {
			continue // the burst's row is at its oldest request
		}
		row := in.row
		row.reqs, row.burst = g, true
		rows = append(rows, row)
		if p.expanded[in.key] {
			for _, m := range g {
				member := p.info(m).row
				member.reqs, member.member = []*broker.TaskRequest{m}, true
				rows = append(rows, member)
			}
		}
	}
	p.rows = rows
	p.relayout()
	p.win.setLen(len(rows))
	p.reselect()
}

// row precomputes the neutralised text of a request's row.
func (p *pendingPage) row(r *broker.TaskRequest) pendingRow {
	d := p.a.d
	row := pendingRow{key: burstKey(r), agent: Neutralise(r.AgentID), intent: Neutralise(r.Intent), risk: d.requestRisk(r)}
	if need := r.RequiredApprovals(); need > 1 {
		row.intent = fmt.Sprintf("approvals %d/%d · %s", len(r.Approvals), need, row.intent)
	}
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
		p.editing = p.filter.editFilter(msg)
		p.refresh()
		return nil
	}
	if row := p.current(); row != nil && p.pane.onKey(msg, k, row.reqs[0].ID, p.lay.maxScroll(p.detail(p.lay.detW))) {
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
	case key.Matches(msg, k.Standing):
		return p.approveStandingRow(row)
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
	if r := row.reqs[0]; r.ApprovedBy(op) {
		a.fail(fmt.Sprintf("you already approved this request (approval %d of %d): another operator must approve it",
			len(r.Approvals), r.RequiredApprovals()))
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
	// After a first approval, what is approved is what that approver proposed.
	terms, who, as := r.ProposedTerms(), row.agent+" asks for", "as asked"
	if n := len(r.Approvals); n > 0 {
		who = Neutralise(r.Approvals[n-1].Operator.Display()) + " approved for " + row.agent
		as = "as proposed"
	}
	var sc []string
	for _, s := range terms.ResourceScopes() {
		info := a.d.scopeInfo(terms.Resource, s)
		sc = append(sc, fmt.Sprintf("  %s %s", riskTag(info.Risk), Neutralise(s)))
	}
	body := fmt.Sprintf("%s %s at %s for %s:\n%s\n\nIntent: %s",
		who, plural(len(sc), "scope"), Neutralise(terms.Resource), ttl(terms.TTL),
		strings.Join(sc, "\n"), trunc(Neutralise(r.Intent), 200))
	if need := r.RequiredApprovals(); need > 1 {
		body += fmt.Sprintf("\n\nPolicy requires %d distinct operators: this is approval %d of %d.", need, len(r.Approvals)+1, need)
	}
	a.push(&confirmDialog{
		title:     fmt.Sprintf("Approve %s risk %s?", strings.ToUpper(risk.String()), as),
		requestID: r.ID,
		body:      body,
		yes:       "approve " + as,
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
	intent := Neutralise(reqs[0].Intent)
	body := fmt.Sprintf("Deny %s's request: %s", row.agent, trunc(intent, 120))
	title := "Deny request"
	if row.burst {
		title = fmt.Sprintf("Deny all %d requests of this burst", len(reqs))
		body = fmt.Sprintf("%s sent %d near-identical requests: %s", row.agent, len(reqs), trunc(intent, 100))
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
		short: []key.Binding{k.Approve, k.Standing, k.Narrow, k.Deny},
		full:  [][]key.Binding{{k.Approve, k.Standing, k.Narrow, k.Deny, k.Expand, k.ScrollUp, k.ScrollDown}},
	}
}
