package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// stateTag names a grant state in text.
func stateTag(s broker.GrantState) string {
	switch s {
	case broker.GrantActive:
		return "ACTIVE"
	case broker.GrantRevoked:
		return "REVOKED"
	case broker.GrantExpired:
		return "EXPIRED"
	case broker.GrantCompleted:
		return "DONE"
	}
	return strings.ToUpper(string(s))
}

// endVerbs name each typed end cause in a row, shortest first.
var endVerbs = map[broker.EndKind]string{
	broker.EndCompleted:     "completed by agent",
	broker.EndExpired:       "expired",
	broker.EndRevokedGrant:  "revoked",
	broker.EndRevokedAgent:  "revoked (agent)",
	broker.EndRevokedAll:    "revoked (all)",
	broker.EndRevokedParent: "ended with parent",
}

// endedSummary is how a grant ended, from its typed cause, and what
// happened after: "revoked (agent) 12s ago · 3 refused · 0 accepted".
func endedSummary(a *app, g *broker.Grant, st broker.GrantStatus) string {
	if st.Cause == nil {
		return ""
	}
	verb := endVerbs[st.Cause.Kind]
	if verb == "" {
		verb = string(st.State)
	}
	return fmt.Sprintf("%s %s ago · %d refused · %d accepted", verb, short(a.now.Sub(st.Cause.At)), g.RefusedAfterEnd, g.AcceptedAfterEnd)
}

// binding says whether the token is sender-constrained.
func binding(g *broker.Grant) string {
	switch {
	case g.TokenJTI == "":
		return "unminted"
	case g.JKT != "":
		return "DPoP"
	}
	return "bearer"
}

// uses renders the use count and the last use.
func uses(a *app, g *broker.Grant) string {
	if g.Uses == 0 {
		return "unused"
	}
	return fmt.Sprintf("%d× %s ago", g.Uses, short(a.now.Sub(g.LastUse)))
}

type grantColumns struct{ tag, agent, left, uses, bind, scopes, resource, intent int }

func grantCols(w int) grantColumns {
	c := grantColumns{tag: 9, agent: 14, left: 9, uses: 12, bind: 9}
	if w >= 100 {
		c.scopes = 24
	}
	if w >= 140 {
		c.resource = 22
	}
	c.intent = max(w-2-c.tag-c.agent-c.left-c.uses-c.bind-c.scopes-c.resource, 10)
	return c
}

func (p *grantsPage) view() string {
	a := p.a
	th := a.th
	c := grantCols(p.lay.listW)
	var list []string
	if p.filterLines() > 0 {
		f := th.Strong.Render("/") + " " + p.filter.String()
		if p.editing {
			f = th.Strong.Render("/") + " " + p.filter.view(30)
		}
		list = append(list, f+th.Muted.Render(fmt.Sprintf("   %d of %d grants match", p.win.n, len(a.d.grants))))
	}
	hdr := "  " + col("STATE", c.tag) + col("AGENT", c.agent) + col("LEFT", c.left) + col("USES", c.uses) +
		col("TOKEN", c.bind)
	if c.scopes > 0 {
		hdr += col("SCOPES", c.scopes)
	}
	if c.resource > 0 {
		hdr += col("RESOURCE", c.resource)
	}
	hdr += "TASK"
	list = append(list, th.Muted.Render(fit(hdr, p.lay.listW)))
	if p.win.n == 0 {
		list = append(list, th.Muted.Render("  No grants yet. Approved requests appear here with a live countdown."))
	}
	from, to := p.win.visible()
	for i := from; i < to; i++ {
		list = append(list, p.renderRow(p.at(i), i == p.win.cursor, c))
	}
	scroll := 0
	if g := p.current(); g != nil {
		scroll = p.pane.at(g.ID)
	}
	return p.lay.joinAt(a, list, p.detail(p.lay.detW), "grant", scroll)
}

func (p *grantsPage) renderRow(g *broker.Grant, selected bool, c grantColumns) string {
	a := p.a
	th := a.th
	status := a.d.status(g, a.now)
	st := status.State
	mark := "  "
	if selected {
		mark = "▸ "
	}
	agent := col(Neutralise(g.AgentID), c.agent)
	intent := Neutralise(g.Intent)
	if g.ParentID != "" {
		intent = "↳ " + intent
	}
	var rest string
	rw := p.lay.listW - 2 - c.tag - c.agent
	if st == broker.GrantActive {
		left := g.ExpiresAt.Sub(a.now)
		rest = col(countdown(left), c.left) + col(uses(a, g), c.uses) + col(binding(g), c.bind)
		if c.scopes > 0 {
			rest += col(neutraliseList(g.Terms.ResourceScopes()), c.scopes)
		}
		if c.resource > 0 {
			rest += col(Neutralise(a.d.resourceName(g.Terms.Resource)), c.resource)
		}
		rest = fit(rest+intent, rw)
	} else {
		rest = fit(endedSummary(a, g, status)+" · "+intent, rw)
	}
	tag := col(stateTag(st), c.tag)
	switch {
	case selected:
		return th.Selected.Render(mark + tag + agent + rest)
	case st == broker.GrantActive && g.ExpiresAt.Sub(a.now) < time.Minute:
		return mark + th.Warn.Render(tag) + agent + rest
	case st == broker.GrantActive:
		return mark + th.OK.Render(tag) + agent + rest
	case st == broker.GrantRevoked && g.AcceptedAfterEnd > 0:
		return th.Error.Render(mark + tag + agent + rest)
	}
	return th.Muted.Render(mark + tag + agent + rest)
}

// detail describes the selected grant.
func (p *grantsPage) detail(w int) []string {
	a := p.a
	th, d := a.th, a.d
	g := p.current()
	if g == nil {
		return []string{th.Muted.Render("Select a grant to see its detail.")}
	}
	status := d.status(g, a.now)
	st := status.State
	label := func(l string) string { return th.Muted.Render(fmt.Sprintf("%-9s", l)) }
	out := []string{th.Title.Render("Task"), "  " + trunc(Neutralise(g.Intent), w-2)}
	for _, l := range wrap(NeutraliseLines(g.Intent), w-2)[1:] {
		out = append(out, "  "+l)
	}
	out = append(out, "",
		label("Grant")+shortID(g.ID)+th.Muted.Render(" · request "+shortID(g.RequestID)),
		label("Agent")+th.Strong.Render(Neutralise(g.AgentID)),
		label("State")+stateTag(st),
	)
	if st == broker.GrantActive {
		out = append(out, label("Left")+countdown(g.ExpiresAt.Sub(a.now))+th.Muted.Render(" of "+ttl(g.Terms.TTL)+
			" · until "+g.ExpiresAt.Local().Format("15:04:05")))
	} else {
		out = append(out, label("Ended")+endedSummary(a, g, status))
		out = append(out, label("Why")+Neutralise(status.Cause.Describe())+
			th.Muted.Render(" at "+status.Cause.At.Local().Format("15:04:05")))
		if g.AcceptedAfterEnd > 0 {
			out = append(out, th.Error.Render(fmt.Sprintf("  ⚠ %d calls were ACCEPTED after it ended: check the resource server's guard", g.AcceptedAfterEnd)))
		}
	}
	out = append(out,
		label("Uses")+uses(a, g),
		label("Token")+binding(g)+th.Muted.Render(jkt(g)),
		label("Resource")+Neutralise(g.Terms.Resource),
		label("Approver")+Neutralise(g.Approver.Display())+th.Muted.Render(" at "+g.CreatedAt.Local().Format("15:04:05")),
	)
	if g.ParentID != "" {
		out = append(out, label("Parent")+shortID(g.ParentID)+th.Muted.Render(" (revoking the parent revokes this)"))
	}
	out = append(out, "", th.Title.Render("Scopes"))
	for _, s := range g.Terms.ResourceScopes() {
		info := d.scopeInfo(g.Terms.Resource, s)
		out = append(out, "  "+styledRisk(a, info.Risk)+" "+Neutralise(s)+"  "+th.Muted.Render(Neutralise(info.Description)))
	}
	if len(g.Terms.Details) > 0 {
		out = append(out, "", th.Title.Render("Authorization details"))
		for _, det := range g.Terms.Details {
			out = append(out, detailLines(det)...)
		}
	}
	return out
}

func jkt(g *broker.Grant) string {
	if g.JKT == "" {
		return ""
	}
	return " · key " + shortHash(g.JKT)
}
