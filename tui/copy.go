package tui

import tea "charm.land/bubbletea/v2"

// copyID puts the selected row's full id on the clipboard with OSC 52
// (the table shows ids shortened), for pasting into `writ grants revoke`,
// a ticket or a chat.
func (m *Model) copyID() tea.Cmd {
	a := m.a
	var what, id string
	switch m.active {
	case pagePending:
		if row := m.pending.current(); row != nil && len(row.reqs) > 0 {
			what, id = "request", row.reqs[0].ID
		}
	case pageGrants:
		if g := m.grants.current(); g != nil {
			what, id = "grant", g.ID
		}
	case pageAgents:
		if v := m.agents.current(); v != nil {
			what, id = "agent", v.Agent.ID
		}
	case pageAudit:
		if e := m.audit.current(); e != nil {
			switch {
			case e.GrantID != "":
				what, id = "grant", e.GrantID
			case e.RequestID != "":
				what, id = "request", e.RequestID
			case e.AgentID != "":
				what, id = "agent", e.AgentID
			}
		}
	}
	if id == "" {
		a.say("nothing selected to copy")
		return nil
	}
	a.say("copied " + what + " id " + Neutralise(id) + " to the clipboard (OSC 52)")
	return tea.SetClipboard(id)
}
