package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/writhq/writ/broker"
)

// riskTag names a risk in text, so it reads without colour.
func riskTag(r broker.Risk) string {
	switch r {
	case broker.RiskLow:
		return "[LOW] "
	case broker.RiskMedium:
		return "[MED] "
	case broker.RiskHigh:
		return "[HIGH]"
	case broker.RiskCritical:
		return "[CRIT]"
	}
	return "[----]"
}

// styledRisk is the risk tag in the theme's risk style.
func styledRisk(a *app, r broker.Risk) string {
	i := int(r)
	if i < 0 || i >= len(a.th.Risk) {
		i = 0
	}
	return a.th.Risk[i].Render(riskTag(r))
}

// pendingColumns are the widths of the queue's columns for a list width.
type pendingColumns struct {
	age, agent, risk, scopes, ttl, verdict, resource, intent int
}

func pendingCols(w int) pendingColumns {
	c := pendingColumns{age: 5, agent: 14, risk: 7, scopes: 22, ttl: 5}
	if w < 90 {
		// Narrow lists keep room for the intent: scope summaries shorten first.
		c.agent, c.scopes = 13, 17
	}
	if w >= 110 {
		c.verdict, c.resource = 8, 24
	}
	used := 2 + c.age + c.agent + c.risk + c.scopes + c.ttl + c.verdict + c.resource
	c.intent = max(w-used, 10)
	return c
}

func (p *pendingPage) view() string {
	a := p.a
	th := a.th
	c := pendingCols(p.lay.listW)
	var list []string
	if p.filterLines() > 0 {
		f := th.Strong.Render("/") + " " + p.filter.String()
		if p.editing {
			f = th.Strong.Render("/") + " " + p.filter.view(30)
		}
		list = append(list, f+th.Muted.Render(fmt.Sprintf("   %d of %d pending match", p.matched(), len(a.d.pending))))
	}
	hdr := "  " + col("AGE", c.age) + col("AGENT", c.agent) + col("RISK", c.risk) + col("INTENT", c.intent) +
		col("SCOPES", c.scopes) + col("TTL", c.ttl)
	if c.verdict > 0 {
		hdr += col("POLICY", c.verdict) + col("RESOURCE", c.resource)
	}
	list = append(list, th.Muted.Render(fit(hdr, p.lay.listW)))
	if len(p.rows) == 0 {
		msg := "  No requests waiting. New ones appear here as agents ask."
		if p.filter.String() != "" {
			msg = "  Nothing pending matches the filter (esc clears it)."
		}
		if !a.d.loaded {
			msg = "  Loading the queue…"
		}
		list = append(list, th.Muted.Render(msg))
	}
	from, to := p.win.visible()
	for i := from; i < to; i++ {
		list = append(list, p.renderRow(&p.rows[i], i == p.win.cursor, c))
	}
	scroll := 0
	if row := p.current(); row != nil {
		scroll = p.pane.at(row.reqs[0].ID)
	}
	return p.lay.joinAt(a, list, p.detail(p.lay.detW), "detail", scroll)
}

func (p *pendingPage) matched() int {
	n := 0
	for _, r := range p.rows {
		if !r.member {
			n += len(r.reqs)
		}
	}
	return n
}

func (p *pendingPage) renderRow(row *pendingRow, selected bool, c pendingColumns) string {
	a := p.a
	th := a.th
	r := row.reqs[0]
	mark := "  "
	_, fresh := a.d.arrived[r.ID]
	fresh = fresh && a.now.Sub(a.d.arrived[r.ID]) <= arrivalFor
	switch {
	case selected:
		mark = "▸ "
	case fresh:
		mark = "● "
	}
	intent := row.intent
	if r.ParentID != "" {
		intent = "↳ " + intent // a follow-on of an earlier task
	}
	if row.member {
		intent = "  └ " + intent
	}
	if row.burst {
		intent = fmt.Sprintf("⚠ BURST ×%d: %s", len(row.reqs), intent)
	}
	if fresh {
		intent = "NEW " + intent
	}
	verdict := ""
	if r.Policy != nil {
		verdict = r.Policy.Verdict
	}
	plain := col(ago(a.now, r.CreatedAt), c.age) + col(row.agent, c.agent)
	rest := col(intent, c.intent) + col(row.scopes, c.scopes) + col(ttl(r.Terms.TTL), c.ttl)
	if c.verdict > 0 {
		rest += col(Neutralise(verdict), c.verdict) + col(Neutralise(a.d.resourceName(r.Terms.Resource)), c.resource)
	}
	tag := col(riskTag(row.risk), c.risk)
	switch {
	case selected:
		return th.Selected.Render(fit(mark+plain+tag+rest, p.lay.listW))
	case fresh:
		return th.Arrival.Render(mark+plain) + styledRisk(a, row.risk) + " " + th.Arrival.Render(rest)
	case row.burst:
		return mark + plain + styledRisk(a, row.risk) + " " + th.Warn.Render(rest)
	}
	return mark + plain + styledRisk(a, row.risk) + " " + rest
}

// detail describes the selected request in full.
func (p *pendingPage) detail(w int) []string {
	a := p.a
	th, d := a.th, a.d
	row := p.current()
	if row == nil {
		return []string{th.Muted.Render("Select a request to see its detail.")}
	}
	r := row.reqs[0]
	var out []string
	add := func(s ...string) { out = append(out, s...) }
	label := func(l string) string { return th.Muted.Render(fmt.Sprintf("%-9s", l)) }
	if row.burst {
		add(th.Warn.Render(fmt.Sprintf("⚠ %d near-identical requests from %s", len(row.reqs), row.agent)),
			th.Warn.Render("  Possible approval fatigue or push-bombing: check before approving any."),
			th.Muted.Render("  enter expands the burst · d denies all of them"), "")
	}
	add(th.Title.Render("Intent"))
	for _, l := range wrap(NeutraliseLines(r.Intent), w-2) {
		add("  " + l)
	}
	av, known := d.agentView(r.AgentID)
	ident := agentIdentity(av)
	agentLine := label("Agent") + th.Strong.Render(row.agent)
	if known && av.Agent.Name != "" {
		agentLine += " (" + Neutralise(av.Agent.Name) + ")"
	}
	if known && av.Agent.Owner != "" {
		agentLine += " · owner " + Neutralise(ownerName(av.Agent.Owner))
	}
	if !known {
		agentLine += th.Error.Render(" [NOT CONFIGURED]")
	}
	add("", agentLine, label("")+th.Muted.Render(ident))
	add(label("Resource") + Neutralise(r.Terms.Resource))
	add(label("TTL") + ttl(r.Terms.TTL) + th.Muted.Render(fmt.Sprintf(" · asked %s ago · review by %s (%s left)",
		short(a.now.Sub(r.CreatedAt)), r.Deadline.Local().Format("15:04:05"), short(r.Deadline.Sub(a.now)))))
	add("", th.Title.Render("Scopes"))
	for _, s := range r.Terms.ResourceScopes() {
		info := d.scopeInfo(r.Terms.Resource, s)
		add("  " + styledRisk(a, info.Risk) + " " + th.Strong.Render(Neutralise(s)) + "  " + th.Muted.Render(Neutralise(info.Description)))
	}
	if len(r.Terms.Details) > 0 {
		add("", th.Title.Render("Authorization details"))
		for _, det := range r.Terms.Details {
			add(detailLines(det)...)
		}
	}
	if r.ParentID != "" {
		add("")
		add(p.parentDiff(r)...)
	}
	if r.Policy != nil {
		line := th.Title.Render("Policy") + "  " + Neutralise(r.Policy.Verdict)
		if r.Policy.Risk != 0 {
			line += "  " + styledRisk(a, r.Policy.Risk)
		}
		add("", line)
		for _, t := range r.Policy.Trace {
			add("  · " + Neutralise(t))
		}
	}
	if need := r.RequiredApprovals(); need > 1 {
		add("")
		add(p.approvals(r, need)...)
	}
	add("", th.Title.Render("History"), "  "+p.history(r.AgentID))
	return out
}

// agentIdentity says how the agent proves who it is.
func agentIdentity(av broker.AgentView) string {
	var parts []string
	for _, k := range av.Agent.Keys {
		id := k.KeyID
		if id == "" {
			id = "unnamed"
		}
		parts = append(parts, "key "+shortHash(Neutralise(id)))
	}
	if w := av.Agent.Workload; w != nil {
		parts = append(parts, "workload "+Neutralise(w.Subject))
	}
	if len(parts) == 0 {
		return "no keys or workload identity"
	}
	return strings.Join(parts, " · ")
}

// detailLines renders one RFC 9396 object readably.
func detailLines(d broker.AuthorizationDetail) []string {
	var out []string
	head := "  • "
	if d.Identifier != "" {
		head += Neutralise(d.Identifier) + ": "
	}
	if len(d.Actions) > 0 {
		head += "actions " + neutraliseList(d.Actions)
	} else {
		head += "any action"
	}
	out = append(out, head)
	for _, f := range []struct {
		name string
		list []string
	}{{"locations", d.Locations}, {"datatypes", d.Datatypes}, {"privileges", d.Privileges}} {
		if len(f.list) > 0 {
			out = append(out, "    "+f.name+" "+neutraliseList(f.list))
		}
	}
	return out
}

func neutraliseList(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = Neutralise(s)
	}
	return strings.Join(out, ", ")
}

// parentDiff shows what a follow-on asks beyond its parent grant.
func (p *pendingPage) parentDiff(r *broker.TaskRequest) []string {
	a := p.a
	th := a.th
	parent, ok := a.d.parents[r.ID]
	if !ok {
		return []string{th.Title.Render("Follow-on") + th.Muted.Render(" of "+shortID(r.ParentID)+" · loading its grant…")}
	}
	out := []string{th.Title.Render("Follow-on") + " of " + Neutralise(trunc(parent.Intent, 60))}
	state := string(a.d.grantState(parent, a.now))
	if parent.State == "none" {
		state = "never granted"
	}
	out = append(out, th.Muted.Render("  parent grant "+shortID(parent.ID)+" · "+state+" · diff against what it granted:"))
	// The domain compares authorities: every scope and detail action, the
	// detail locations, the resource and the absolute end.
	mine, theirs := r.Terms.Authority(a.now.Add(r.Terms.TTL)), parent.Authority()
	diff := mine.DiffFrom(theirs)
	for _, act := range mine.Actions {
		if slices.Contains(diff.Added, act) {
			out = append(out, th.Warn.Render("  + "+Neutralise(act)+"   NEW: beyond the parent grant"))
		} else {
			out = append(out, "  = "+Neutralise(act))
		}
	}
	if diff.Resource != "" {
		out = append(out, th.Warn.Render("  + resource "+Neutralise(r.Terms.Resource)+"   NEW: not the parent's "+Neutralise(diff.Resource)))
	}
	if diff.Later {
		out = append(out, th.Warn.Render("  + ends "+mine.NotAfter.Local().Format("15:04:05")+"   after the parent ("+
			theirs.NotAfter.Local().Format("15:04:05")+"); a grant is cut to end with its parent"))
	}
	if why := mine.Within(theirs); why != "" && len(diff.Added) == 0 && diff.Resource == "" && !diff.Later {
		out = append(out, th.Warn.Render("  ≠ "+Neutralise(why)))
	}
	return out
}

// history summarises what the agent holds and how its recent grants went.
func (p *pendingPage) history(agentID string) string {
	d := p.a.d
	active := d.activeByAgent[agentID]
	var last *broker.Grant
	for i := len(d.grants) - 1; i >= 0 && i >= len(d.grants)-2000; i-- {
		if d.grants[i].AgentID == agentID {
			last = d.grants[i]
			break
		}
	}
	s := plural(active, "active grant")
	if last != nil {
		s += fmt.Sprintf(" · last granted %s ago by %s (%s)", short(p.a.now.Sub(last.CreatedAt)),
			Neutralise(last.Approver.Display()), d.grantState(last, p.a.now))
	}
	for i, dec := range d.decisions[agentID] {
		if i == 0 {
			s += " · recently:"
		} else {
			s += ","
		}
		s += fmt.Sprintf(" %s %s ago", pastTense(dec.Kind), short(p.a.now.Sub(dec.At)))
		if dec.Kind == broker.DecisionDeny && dec.Reason != "" {
			s += " (" + Neutralise(dec.Reason) + ")"
		}
	}
	if av, ok := d.agentView(agentID); ok {
		if av.State.Quarantined {
			s += " · QUARANTINED"
		}
		if av.State.Throttled > 0 {
			s += fmt.Sprintf(" · %d requests throttled", av.State.Throttled)
		}
	}
	return s
}

// pastTense names a decision for the history line.
func pastTense(k broker.DecisionKind) string {
	switch k {
	case broker.DecisionApprove:
		return "approved"
	case broker.DecisionNarrow:
		return "narrowed"
	}
	return "denied"
}

// approvals lists who has approved a request that needs several
// operators, and what the next approver approves.
func (p *pendingPage) approvals(r *broker.TaskRequest, need int) []string {
	th := p.a.th
	n := len(r.Approvals)
	more := "another operator must approve"
	switch {
	case n == 0:
		more = fmt.Sprintf("needs %d distinct operators", need)
	case need-n > 1:
		more = fmt.Sprintf("%d more operators must approve", need-n)
	}
	out := []string{th.Title.Render(fmt.Sprintf("Approvals %d/%d", n, need)) + th.Muted.Render(" · "+more)}
	for _, ap := range r.Approvals {
		verb := "approved as asked"
		if ap.Kind == broker.DecisionNarrow {
			verb = "narrowed to " + neutraliseList(ap.Terms.ResourceScopes()) + " for " + ttl(ap.Terms.TTL)
		}
		line := "  ✓ " + th.Strong.Render(Neutralise(ap.Operator.Display())) + " " + verb +
			th.Muted.Render(" at "+ap.At.Local().Format("15:04:05"))
		if ap.Reason != "" {
			line += th.Muted.Render(" (" + Neutralise(ap.Reason) + ")")
		}
		out = append(out, line)
	}
	if n > 0 {
		out = append(out, th.Muted.Render("  a approves what "+Neutralise(r.Approvals[n-1].Operator.Display())+
			" approved; n narrows within it; d denies it for everyone"))
	}
	return out
}

// ownerName shortens an issuer|subject owner to its subject for display;
// an email stays as it is.
func ownerName(owner string) string {
	if _, sub, ok := strings.Cut(owner, "|"); ok {
		return sub
	}
	return owner
}
