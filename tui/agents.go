package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// agentsPage lists the registered agents with their identity, ceilings,
// active grants and last contact, and quarantines or releases them.
type agentsPage struct {
	a   *app
	lay paneLayout
	win window
	// reasons are the latest agent.revoked audit entries of quarantined
	// agents; asked marks those being loaded (see agent_reason.go).
	reasons map[string]*broker.AuditEntry
	asked   map[string]bool
	pane    paneScroll
}

func newAgentsPage(a *app) *agentsPage { return &agentsPage{a: a} }

func (p *agentsPage) title() string   { return fmt.Sprintf("Agents %d", len(p.a.d.agents)) }
func (p *agentsPage) filtering() bool { return false }

func (p *agentsPage) setSize(w, h int) {
	p.lay = layoutFor(w, h)
	p.win.setHeight(p.lay.rows(0))
}

func (p *agentsPage) refresh() { p.win.setLen(len(p.a.d.agents)) }

func (p *agentsPage) current() *broker.AgentView {
	if p.win.n == 0 || p.win.cursor >= len(p.a.d.agents) {
		return nil
	}
	return &p.a.d.agents[p.win.cursor]
}

func (p *agentsPage) update(msg tea.Msg) tea.Cmd {
	a, k := p.a, p.a.keys
	switch msg := msg.(type) {
	case mouseAt:
		p.win.mouse(msg.msg, msg.y-1)
	case tea.KeyPressMsg:
		if av := p.current(); av != nil && p.pane.onKey(msg, k, av.Agent.ID, p.lay.maxScroll(p.detail(p.lay.detW))) {
			return nil
		}
		if p.win.navigate(msg, k) {
			return nil
		}
		av := p.current()
		if av == nil {
			return nil
		}
		id := av.Agent.ID
		switch {
		case key.Matches(msg, k.Quarantine):
			if av.State.Quarantined {
				a.fail(Neutralise(id) + " is quarantined already; u releases it")
				return nil
			}
			askRevokeAgent(a, id, true)
		case key.Matches(msg, k.RevokeAgent):
			askRevokeAgent(a, id, false)
		case key.Matches(msg, k.Release):
			if !av.State.Quarantined {
				a.fail(Neutralise(id) + " is not quarantined")
				return nil
			}
			op, ok := a.operator()
			if !ok {
				why, _ := a.needSession("releasing an agent")
				a.fail(why)
				return nil
			}
			a.push(&confirmDialog{
				title: "Release " + Neutralise(id) + " from quarantine?",
				body:  "It may ask for tasks again. Its revoked grants stay revoked.",
				yes:   "release",
				onYes: func(a *app) tea.Cmd { return release(a.ctx, a.b, op, id) },
			})
		}
	}
	return nil
}

func (p *agentsPage) view() string {
	a := p.a
	th := a.th
	w := p.lay.listW
	idW, nameW, identW, actW, seenW := 16, 18, 10, 7, 10
	if w < 100 {
		nameW = 0
	}
	ownerW := max(w-2-idW-nameW-identW-actW-seenW-13, 6)
	hdr := "  " + col("STATE", 13) + col("AGENT", idW) + col("NAME", nameW) + col("OWNER", ownerW) + col("IDENTITY", identW) +
		col("ACTIVE", actW) + col("SEEN", seenW)
	list := []string{th.Muted.Render(fit(hdr, w))}
	if len(a.d.agents) == 0 {
		list = append(list, th.Muted.Render("  No agents configured."))
	}
	from, to := p.win.visible()
	for i := from; i < to; i++ {
		av := a.d.agents[i]
		tag, style := "ok", th.OK
		if av.State.Quarantined {
			tag, style = "QUARANTINED", th.Error
		}
		ident := plural(len(av.Agent.Keys), "key")
		if av.Agent.Workload != nil {
			ident = "workload"
		}
		seen := lastSeen(a, av.State)
		rest := col(Neutralise(av.Agent.ID), idW) + col(Neutralise(av.Agent.Name), nameW) + col(Neutralise(av.Agent.Owner), ownerW) +
			col(ident, identW) + col(fmt.Sprint(a.d.activeByAgent[av.Agent.ID]), actW) + col(seen, seenW)
		if i == p.win.cursor {
			list = append(list, th.Selected.Render(fit("▸ "+col(tag, 13)+rest, w)))
		} else {
			list = append(list, "  "+style.Render(col(tag, 13))+rest)
		}
	}
	scroll := 0
	if av := p.current(); av != nil {
		scroll = p.pane.at(av.Agent.ID)
	}
	return p.lay.joinAt(a, list, p.detail(p.lay.detW), "agent", scroll)
}

func (p *agentsPage) detail(w int) []string {
	a := p.a
	th := a.th
	av := p.current()
	if av == nil {
		return []string{th.Muted.Render("Select an agent.")}
	}
	label := func(l string) string { return th.Muted.Render(fmt.Sprintf("%-10s", l)) }
	ag := av.Agent
	out := []string{
		th.Title.Render(Neutralise(ag.ID)) + "  " + Neutralise(ag.Name),
		label("Owner") + Neutralise(ag.Owner),
		label("Active") + plural(a.d.activeByAgent[ag.ID], "grant"),
		label("Last seen") + lastSeen(a, av.State),
	}
	if av.State.Quarantined {
		out = append(out, th.Error.Render("QUARANTINED")+th.Muted.Render(" · new requests refused · u releases"))
		if why := p.reasonLine(ag.ID); why != "" {
			out = append(out, wrap(why, w)...)
		}
	}
	if av.State.Throttled > 0 {
		out = append(out, label("Throttled")+fmt.Sprintf("%d requests refused by the rate limit", av.State.Throttled))
	}
	if !av.State.EpochAt.IsZero() {
		out = append(out, label("Revoked")+"everything, "+ago(a.now, av.State.EpochAt)+" ago")
	}
	out = append(out, "", th.Title.Render("Identity"))
	for _, k := range ag.Keys {
		out = append(out, "  key "+Neutralise(k.KeyID)+th.Muted.Render(" "+Neutralise(k.Algorithm)))
	}
	if wl := ag.Workload; wl != nil {
		out = append(out, "  workload "+Neutralise(wl.Subject), th.Muted.Render("    issued by "+Neutralise(wl.Issuer)))
	}
	if len(ag.Keys) == 0 && ag.Workload == nil {
		out = append(out, th.Warn.Render("  no keys or workload identity: it cannot authenticate"))
	}
	out = append(out, "", th.Title.Render("Ceilings"))
	for _, c := range ag.Ceiling {
		out = append(out, "  "+Neutralise(c.Resource))
		out = append(out, "    "+trunc(neutraliseList(c.Scopes), w-4))
	}
	if ag.MaxTTL > 0 {
		out = append(out, label("Max TTL")+ttl(ag.MaxTTL))
	}
	return out
}

func (p *agentsPage) help() helpKeys {
	k := p.a.keys
	s := []key.Binding{k.Quarantine, k.Release, k.RevokeAgent}
	return helpKeys{short: s, full: [][]key.Binding{s}}
}

func lastSeen(a *app, st broker.AgentState) string {
	if st.LastSeen.IsZero() {
		return "never"
	}
	return ago(a.now, st.LastSeen) + " ago"
}
