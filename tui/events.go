package tui

import (
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// onData applies loads, live events and action results to the shared data,
// reporting whether msg was one of them.
func (m *Model) onData(msg tea.Msg) (tea.Cmd, bool) {
	a := m.a
	switch msg := msg.(type) {
	case snapshotMsg:
		if msg.err != nil {
			a.fail("load: " + broker.ErrorMessage(msg.err) + "; trying again")
			// Events wait in early until a snapshot loads: try again soon.
			return tea.Tick(2*time.Second, func(time.Time) tea.Msg {
				return loadSnapshot(a.ctx, a.b, a.opts.RecentGrants)()
			}), true
		}
		banner := a.d.storeBanner
		a.d.setSnapshot(msg, a.now)
		if a.d.storeBanner != banner {
			m.resize(m.width, m.height)
		}
		m.refreshAll()
		cmd := tea.Batch(m.pending.wantParent(), m.agents.wantReasons())
		if early := m.early; len(early) > 0 {
			m.early = nil
			cmd = tea.Batch(cmd, m.onEvents(early))
		}
		return cmd, true
	case subscribedMsg:
		m.events = msg.ch
		return tea.Batch(waitEvents(msg.ch), loadSnapshot(a.ctx, a.b, a.opts.RecentGrants)), true
	case eventsMsg:
		var cmd tea.Cmd
		if a.d.loaded {
			cmd = m.onEvents(msg.events)
		} else {
			m.early = append(m.early, msg.events...)
		}
		if m.events != nil {
			cmd = tea.Batch(cmd, waitEvents(m.events))
		}
		return cmd, true
	case eventsClosedMsg:
		m.events = nil
		return nil, true
	case auditMsg:
		m.audit.onLoaded(msg)
		return nil, true
	case verifiedMsg:
		m.audit.onVerified(msg)
		return nil, true
	case agentReasonMsg:
		m.agents.onReason(msg)
		return nil, true
	case parentMsg:
		if msg.err == nil && msg.grant != nil {
			a.d.parents[msg.requestID] = msg.grant
		}
		return nil, true
	case decidedMsg:
		m.onDecided(msg)
		return m.pending.wantParent(), true
	case standingMsg:
		return m.onStanding(msg), true
	case standingRevokedMsg:
		m.onStandingRevoked(msg)
		return nil, true
	case revokedMsg:
		m.onRevoked(msg)
		return nil, true
	case releasedMsg:
		if msg.err != nil {
			a.fail("release " + msg.agentID + ": " + broker.ErrorMessage(msg.err))
		} else {
			a.say("released " + msg.agentID + " from quarantine; its revoked grants stay revoked")
		}
		return nil, true
	case unfrozenMsg:
		if msg.err != nil {
			a.fail("unfreeze: " + actionError(msg.err))
		} else {
			a.say("issuance is LIVE again")
		}
		return nil, true
	}
	return nil, false
}

// onEvents applies a batch of live events.
func (m *Model) onEvents(events []broker.Event) tea.Cmd {
	a, d := m.a, m.a.d
	arrivals, lastAgent := 0, ""
	var cmds []tea.Cmd
	pendingChanged, grantsChanged, agentsChanged, auditChanged := false, false, false, false
	for _, e := range events {
		auditChanged = true
		if e.Issuer != nil {
			d.issuer = *e.Issuer
			grantsChanged = true
		}
		if e.Agent != nil {
			if d.setAgentState(*e.Agent) {
				grantsChanged = true
			}
			agentsChanged = true
			if e.Kind == broker.EventAgentRevoked || e.Kind == broker.EventAgentReleased {
				m.agents.forgetReason(e.Agent.ID)
			}
		}
		if e.Decision != nil && e.Request != nil {
			d.noteDecision(e.Request.AgentID, e.Decision)
		}
		if e.Grant != nil {
			d.putGrant(e.Grant)
			grantsChanged = true
		}
		switch e.Kind {
		case broker.EventStoreHealth:
			if e.Store != nil && d.setStoreHealth(*e.Store) {
				m.resize(m.width, m.height)
			}
		case broker.EventResync:
			// Events from here on wait for the new snapshot and go on top of it.
			d.loaded = false
			return tea.Batch(loadSnapshot(a.ctx, a.b, a.opts.RecentGrants), loadAudit(a.ctx, a.b, 0))
		case broker.EventRequestSubmitted:
			// A request policy approves as it arrives is decided a moment
			// later: it never joins the queue, nor rings for anyone.
			if e.Request != nil && (e.Request.Policy == nil || !e.Request.Policy.AutoApprove) && d.addRequest(e.Request, a.now) {
				arrivals++
				lastAgent = e.Request.AgentID
				pendingChanged = true
			}
		case broker.EventRequestUpdated:
			if e.Request == nil {
				break
			}
			if d.updateRequest(e.Request) {
				pendingChanged = true
			} else if e.Request.State == broker.RequestPending && d.addRequest(e.Request, a.now) {
				// An auto-approval that did not take effect: a person decides after all.
				arrivals++
				lastAgent = e.Request.AgentID
				pendingChanged = true
			}
		case broker.EventRequestDecided, broker.EventRequestExpired, broker.EventRequestCancelled:
			if e.Request != nil {
				m.closedElsewhere(e)
				pendingChanged = d.closeRequest(e.Request.ID) || pendingChanged
			}
		}
	}
	if grantsChanged {
		d.recount(a.now)
	}
	if pendingChanged {
		m.pending.refresh()
		cmds = append(cmds, m.pending.wantParent())
	}
	if grantsChanged {
		m.grants.refresh()
	}
	if agentsChanged || grantsChanged {
		m.agents.refresh()
	}
	if agentsChanged {
		cmds = append(cmds, m.agents.wantReasons())
	}
	if auditChanged {
		cmds = append(cmds, m.audit.stale(m.active == pageAudit))
	}
	if arrivals > 0 && !m.focused {
		cmds = append(cmds, a.notify(lastAgent, arrivals))
	}
	return tea.Batch(cmds...)
}

// closedElsewhere closes a dialog deciding a request that was just decided,
// expired or cancelled, and says so: a decision never fails silently.
func (m *Model) closedElsewhere(e broker.Event) {
	a := m.a
	for i := len(a.dialogs) - 1; i >= 0; i-- {
		if !a.dialogs[i].closes(e.Request.ID) {
			continue
		}
		a.dialogs = append(a.dialogs[:i], a.dialogs[i+1:]...)
		switch {
		case e.Kind == broker.EventRequestExpired:
			a.fail("request " + shortID(e.Request.ID) + " passed its review deadline while you were deciding")
		case e.Kind == broker.EventRequestCancelled:
			a.fail("request " + shortID(e.Request.ID) + " was cancelled (agent quarantined) while you were deciding")
		case e.Decision != nil:
			a.fail(fmt.Sprintf("request %s was %s by %s while you were deciding", shortID(e.Request.ID),
				decidedVerb(e.Decision.Kind), Neutralise(e.Decision.Operator.Display())))
		}
	}
}

func decidedVerb(k broker.DecisionKind) string {
	switch k {
	case broker.DecisionApprove:
		return "approved"
	case broker.DecisionNarrow:
		return "narrowed and approved"
	}
	return "denied"
}

// onDecided reports a decision's outcome. A decision that lost a race with
// another operator or the deadline says exactly that.
func (m *Model) onDecided(msg decidedMsg) {
	a := m.a
	if msg.err != nil {
		switch code := broker.ErrorCode(msg.err); {
		case code == broker.ECONFLICT && m.approvedBy(msg.requestIDs[0], msg.op):
			// Still pending: it needs another operator, not this one again.
			a.fail(broker.ErrorMessage(msg.err))
		case code == broker.ECONFLICT, code == broker.EEXPIRED:
			a.fail("too late: " + broker.ErrorMessage(msg.err))
			for _, id := range msg.requestIDs {
				a.d.closeRequest(id)
			}
			m.pending.refresh()
		default:
			a.fail(string(msg.kind) + " failed: " + actionError(msg.err))
		}
		if msg.failed == len(msg.requestIDs) {
			return
		}
	}
	if msg.kind != broker.DecisionDeny && msg.grant == nil {
		m.onApprovalRecorded(msg)
		return
	}
	ok := len(msg.requestIDs) - msg.failed
	for _, id := range msg.requestIDs {
		if msg.err == nil {
			a.d.closeRequest(id)
		}
	}
	if msg.grant != nil {
		a.d.putGrant(msg.grant)
		a.d.recount(a.now)
		m.grants.refresh()
	}
	m.pending.refresh()
	agent := Neutralise(msg.agentID)
	switch msg.kind {
	case broker.DecisionApprove:
		a.say("approved " + agent + "'s request as asked · grant " + shortID(msg.grant.ID))
	case broker.DecisionNarrow:
		a.say("narrowed and approved " + agent + "'s request · grant " + shortID(msg.grant.ID))
	case broker.DecisionDeny:
		a.say(fmt.Sprintf("denied %s from %s: %s", plural(ok, "request"), agent, Neutralise(msg.reason)))
	}
}

// approvedBy reports whether the console's copy of a pending request has
// an approval by op.
func (m *Model) approvedBy(id string, op broker.Operator) bool {
	r := m.a.d.pendingRequest(id)
	return r != nil && r.ApprovedBy(op)
}

// onApprovalRecorded reports an approval that policy needs more of: the
// request stays in the queue, showing how many approvals it has.
func (m *Model) onApprovalRecorded(msg decidedMsg) {
	a := m.a
	r := msg.request
	if r == nil {
		a.say("approval recorded · another operator must approve")
		return
	}
	if r.State != broker.RequestPending {
		// Another operator's approval or denial landed meanwhile: the event says which.
		a.say(fmt.Sprintf("approval recorded; the request is now %s", r.State))
		return
	}
	a.d.updateRequest(r)
	m.pending.refresh()
	n, need := len(r.Approvals), r.RequiredApprovals()
	more := "another operator must approve"
	if need-n > 1 {
		more = fmt.Sprintf("%d more operators must approve", need-n)
	}
	a.say(fmt.Sprintf("approval %d of %d recorded · %s", n, need, more))
}

// onRevoked reports a revocation's outcome.
func (m *Model) onRevoked(msg revokedMsg) {
	a := m.a
	if msg.err != nil {
		a.fail("revoke failed: " + actionError(msg.err))
		return
	}
	switch msg.scope {
	case broker.RevokeGrant:
		a.say(fmt.Sprintf("revoked grant %s (%s)", shortID(msg.target), plural(msg.rev.Grants, "grant")+" ended"))
	case broker.RevokeAgent:
		verb := "revoked everything " + Neutralise(msg.target) + " holds"
		if msg.quarantine {
			verb += " and quarantined it"
		}
		a.say(verb)
	case broker.RevokeAll:
		a.say("EVERY grant revoked and issuance FROZEN · audited under " + Neutralise(msg.rev.Operator.Display()))
	}
	if msg.rev != nil && msg.scope == broker.RevokeAll {
		// The event will carry it too; apply now so the banner is immediate.
		a.d.issuer.Frozen = a.d.issuer.Frozen || msg.rev.Freeze
		if msg.rev.Epoch > a.d.issuer.Epoch {
			a.d.issuer.Epoch, a.d.issuer.EpochAt = msg.rev.Epoch, msg.rev.At
		}
	}
	a.d.recount(a.now)
	m.grants.refresh()
	m.agents.refresh()
}

// onPolicy shows a policy reload: a toast when the file loaded, a banner
// while it does not.
func (m *Model) onPolicy(msg PolicyMsg) {
	a := m.a
	if msg.Err != nil {
		a.policyErr = Neutralise(msg.Err.Error())
		m.resize(m.width, m.height)
		return
	}
	wasBroken := a.policyErr != ""
	a.policyErr = ""
	if wasBroken {
		m.resize(m.width, m.height)
	}
	a.say(fmt.Sprintf("policy reloaded from %s: %s; new requests are evaluated with it", Neutralise(msg.File), plural(msg.Rules, "rule")))
}

// refreshAll rebuilds every page after a snapshot.
func (m *Model) refreshAll() {
	for _, p := range m.pages {
		p.refresh()
	}
}
