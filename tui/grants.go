package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// grantsPage lists grants newest first: active ones counting down, ended
// ones for a while with what happened after they ended.
type grantsPage struct {
	a       *app
	lay     paneLayout
	win     window
	filter  lineEdit
	editing bool
	// match holds the indexes into data.grants (newest first) that pass the
	// filter; nil when there is no filter, so 100,000 grants need no index.
	match    []int
	selected string
	pane     paneScroll
}

func newGrantsPage(a *app) *grantsPage { return &grantsPage{a: a} }

func (p *grantsPage) title() string {
	return fmt.Sprintf("Grants %d", p.a.d.activeGrants)
}
func (p *grantsPage) filtering() bool { return p.editing }

func (p *grantsPage) setSize(w, h int) {
	p.lay = layoutFor(w, h)
	p.win.setHeight(p.lay.rows(p.filterLines()))
}

func (p *grantsPage) filterLines() int {
	if p.editing || p.filter.String() != "" {
		return 1
	}
	return 0
}

// at returns the grant shown on row i.
func (p *grantsPage) at(i int) *broker.Grant {
	gs := p.a.d.grants
	if p.match != nil {
		return gs[p.match[i]]
	}
	return gs[len(gs)-1-i]
}

func (p *grantsPage) current() *broker.Grant {
	if p.win.n == 0 || p.win.cursor >= p.win.n {
		return nil
	}
	return p.at(p.win.cursor)
}

// refresh applies the filter and keeps the selection on the same grant.
func (p *grantsPage) refresh() {
	gs := p.a.d.grants
	q := strings.ToLower(strings.TrimSpace(p.filter.String()))
	if q == "" {
		p.match = nil
		p.win.setLen(len(gs))
	} else {
		p.match = p.match[:0]
		for i := len(gs) - 1; i >= 0; i-- {
			if grantMatches(gs[i], q) {
				p.match = append(p.match, i)
			}
		}
		if p.match == nil {
			p.match = []int{}
		}
		p.win.setLen(len(p.match))
	}
	p.win.setHeight(p.lay.rows(p.filterLines()))
	if p.selected != "" {
		if i, ok := p.a.d.grantAt[p.selected]; ok {
			row := len(gs) - 1 - i
			if p.match != nil {
				row = -1
				for j, m := range p.match {
					if m == i {
						row = j
						break
					}
				}
			}
			if row >= 0 {
				p.win.moveTo(row)
				return
			}
		}
	}
	p.remember()
}

func grantMatches(g *broker.Grant, q string) bool {
	if strings.Contains(strings.ToLower(g.AgentID), q) || strings.Contains(strings.ToLower(g.Intent), q) ||
		strings.Contains(strings.ToLower(g.Terms.Resource), q) || strings.Contains(string(g.State), q) ||
		strings.HasPrefix(g.ID, q) {
		return true
	}
	for _, s := range g.Terms.Scopes {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func (p *grantsPage) remember() {
	if g := p.current(); g != nil {
		p.selected = g.ID
	}
}

func (p *grantsPage) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return p.onKey(msg)
	case mouseAt:
		if p.win.mouse(msg.msg, msg.y-1-p.filterLines()) {
			p.remember()
		}
	}
	return nil
}

// revokePresets are the reasons an operator most often gives.
var revokePresets = []string{
	"task finished early",
	"not what the task is about",
	"suspected compromise: investigating",
	"agent misbehaving",
}

func (p *grantsPage) onKey(msg tea.KeyPressMsg) tea.Cmd {
	a, k := p.a, p.a.keys
	if p.editing {
		p.editing = p.filter.editFilter(msg)
		p.refresh()
		return nil
	}
	if g := p.current(); g != nil && p.pane.onKey(msg, k, g.ID, p.lay.maxScroll(p.detail(p.lay.detW))) {
		return nil
	}
	if p.win.navigate(msg, k) {
		p.remember()
		return nil
	}
	g := p.current()
	switch {
	case key.Matches(msg, k.Filter):
		p.editing = true
		p.setSize(p.lay.w, p.lay.h)
	case key.Matches(msg, k.ClearFilter):
		p.filter.set("")
		p.refresh()
	case g == nil:
	case key.Matches(msg, k.Revoke):
		if st := a.d.grantState(g, a.now); st != broker.GrantActive {
			a.fail("grant " + shortID(g.ID) + " is " + string(st) + " already")
			return nil
		}
		op := a.revoker()
		id := g.ID
		a.push(newReasonDialog("Revoke grant",
			fmt.Sprintf("Revoke %s's grant for %q and its follow-ons.\nResource servers refuse its token at once.",
				Neutralise(g.AgentID), trunc(Neutralise(g.Intent), 80)),
			"revoke", revokePresets, func(a *app, reason string) tea.Cmd {
				return revokeGrant(a.ctx, a.b, op, id, reason)
			}))
	case key.Matches(msg, k.RevokeAgent):
		askRevokeAgent(a, g.AgentID, false)
	}
	return nil
}

// askRevokeAgent opens the dialog that revokes everything an agent holds,
// and with quarantine refuses its new requests until released.
func askRevokeAgent(a *app, agentID string, quarantine bool) {
	op := a.revoker()
	n := a.d.activeByAgent[agentID]
	title, verb := "Revoke everything "+Neutralise(agentID)+" holds", "revoke all"
	body := fmt.Sprintf("Revoke all %s of %s in one step.", plural(n, "active grant"), Neutralise(agentID))
	if quarantine {
		title, verb = "Quarantine "+Neutralise(agentID), "quarantine"
		body += "\nIts pending requests are cancelled and new ones refused until it is released (u)."
	}
	a.push(newReasonDialog(title, body, verb, revokePresets[1:], func(a *app, reason string) tea.Cmd {
		return revokeAgent(a.ctx, a.b, op, agentID, reason, quarantine)
	}))
}

func (p *grantsPage) help() helpKeys {
	k := p.a.keys
	return helpKeys{short: []key.Binding{k.Revoke, k.RevokeAgent}, full: [][]key.Binding{{k.Revoke, k.RevokeAgent, k.ScrollUp, k.ScrollDown}}}
}
