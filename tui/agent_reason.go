package tui

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// A quarantined agent shows who quarantined it, when and why: the audit
// entry of its latest revocation, loaded when the agent is seen
// quarantined and again after each revocation of it.

// agentReasonMsg is the latest agent.revoked audit entry of an agent.
type agentReasonMsg struct {
	agentID string
	entry   *broker.AuditEntry
	err     error
}

func loadAgentReason(a *app, agentID string) tea.Cmd {
	ctx, b := a.ctx, a.b
	return func() tea.Msg {
		es, err := b.Audit(ctx, broker.AuditFilter{AgentID: agentID, Kinds: []broker.AuditKind{broker.AuditAgentRevoked}, Limit: 1})
		m := agentReasonMsg{agentID: agentID, err: err}
		if err == nil && len(es) > 0 {
			m.entry = es[0]
		}
		return m
	}
}

// wantReasons loads the reasons of quarantined agents not known yet.
func (p *agentsPage) wantReasons() tea.Cmd {
	if p.reasons == nil {
		p.reasons = make(map[string]*broker.AuditEntry)
		p.asked = make(map[string]bool)
	}
	var cmds []tea.Cmd
	for _, av := range p.a.d.agents {
		id := av.Agent.ID
		if av.State.Quarantined && !p.asked[id] {
			p.asked[id] = true
			cmds = append(cmds, loadAgentReason(p.a, id))
		}
	}
	return tea.Batch(cmds...)
}

// forgetReason drops what is known of an agent's revocation, after a new
// one or a release.
func (p *agentsPage) forgetReason(id string) {
	delete(p.reasons, id)
	delete(p.asked, id)
}

func (p *agentsPage) onReason(m agentReasonMsg) {
	// Only an entry about this agent's revocation explains it.
	if m.err != nil || m.entry == nil || m.entry.AgentID != m.agentID || m.entry.Kind != broker.AuditAgentRevoked {
		return
	}
	if p.reasons == nil {
		p.reasons = make(map[string]*broker.AuditEntry)
	}
	p.reasons[m.agentID] = m.entry
}

// reasonLine says who quarantined the agent, when and why.
func (p *agentsPage) reasonLine(id string) string {
	e := p.reasons[id]
	if e == nil {
		return ""
	}
	who := e.Actor
	if e.Operator != nil {
		who = e.Operator.Display()
	}
	why := e.Message
	if _, after, ok := strings.Cut(why, ": "); ok {
		why = after
	}
	return "by " + Neutralise(who) + ", " + ago(p.a.now, e.At) + " ago: " + Neutralise(why)
}
