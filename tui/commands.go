package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// Every call to the broker is one of these named commands: it runs off the
// UI goroutine and its result comes back as a message. Commands never
// touch the model.

// snapshotMsg is everything the console shows, loaded at once.
type snapshotMsg struct {
	cfg     *broker.Config
	issuer  broker.IssuerState
	agents  []broker.AgentView
	pending []*broker.TaskRequest
	grants  []*broker.Grant
	store   broker.StoreHealth
	err     error
}

// loadSnapshot loads the whole picture: at start and after a resync.
func loadSnapshot(ctx context.Context, b Backend, recent time.Duration) tea.Cmd {
	return func() tea.Msg {
		s := snapshotMsg{cfg: b.Config(), issuer: b.IssuerState(), agents: b.Agents()}
		s.store = storeHealthOf(b) // after IssuerState, which refreshes a remote console's
		if s.pending, s.err = b.Pending(ctx); s.err != nil {
			return s
		}
		s.grants, s.err = b.Grants(ctx, recent)
		return s
	}
}

// auditMsg is a page of the audit log, newest first.
type auditMsg struct {
	before  uint64 // the Before the page was asked with (0: the newest)
	entries []*broker.AuditEntry
	err     error
}

// auditPageSize is how many entries the audit page loads at a time.
const auditPageSize = 500

// loadAudit loads a page of audit entries older than before (0: newest).
func loadAudit(ctx context.Context, b Backend, before uint64) tea.Cmd {
	return func() tea.Msg {
		es, err := b.Audit(ctx, broker.AuditFilter{Before: before, Limit: auditPageSize})
		return auditMsg{before: before, entries: es, err: err}
	}
}

// verifiedMsg is the result of verifying the audit chain.
type verifiedMsg struct {
	count uint64
	err   error
	at    time.Time
}

// verifyAudit checks the whole audit chain.
func verifyAudit(ctx context.Context, b Backend, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		n, err := b.VerifyAudit(ctx)
		return verifiedMsg{count: n, err: err, at: now()}
	}
}

// subscribedMsg carries the live event channel.
type subscribedMsg struct{ ch <-chan broker.Event }

// subscribe opens the live event stream.
func subscribe(ctx context.Context, b Backend) tea.Cmd {
	return func() tea.Msg { return subscribedMsg{ch: b.Subscribe(ctx)} }
}

// eventsMsg is a batch of live events, in order.
type eventsMsg struct{ events []broker.Event }

// eventsClosedMsg says the event stream ended (the context was cancelled).
type eventsClosedMsg struct{}

// maxEventBatch bounds how many queued events one message carries, so a
// burst redraws once, not once per event.
const maxEventBatch = 512

// waitEvents waits for the next event and takes whatever else is already
// queued; the root model re-arms it after each batch.
func waitEvents(ch <-chan broker.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		batch := []broker.Event{e}
		for len(batch) < maxEventBatch {
			select {
			case e, ok := <-ch:
				if !ok {
					return eventsMsg{batch}
				}
				batch = append(batch, e)
			default:
				return eventsMsg{batch}
			}
		}
		return eventsMsg{batch}
	}
}

// parentMsg is the parent grant of a follow-on request.
type parentMsg struct {
	requestID string
	grant     *broker.Grant
	err       error
}

// loadParent fetches the grant a follow-on request's parent task created.
func loadParent(ctx context.Context, b Backend, req *broker.TaskRequest) tea.Cmd {
	id, parentID := req.ID, req.ParentID
	return func() tea.Msg {
		p, err := b.Request(ctx, parentID)
		if err != nil {
			return parentMsg{requestID: id, err: err}
		}
		if p.GrantID == "" {
			return parentMsg{requestID: id, grant: &broker.Grant{RequestID: p.ID, Terms: p.Terms, Intent: p.Intent, State: "none"}}
		}
		g, err := b.Grant(ctx, p.GrantID)
		return parentMsg{requestID: id, grant: g, err: err}
	}
}

// decidedMsg is the outcome of approving, narrowing or denying requests.
type decidedMsg struct {
	kind       broker.DecisionKind
	op         broker.Operator
	requestIDs []string
	agentID    string
	grant      *broker.Grant // the last grant made, for approvals
	// request is the request as it stands after an approval that was
	// recorded without a grant: policy requires more approvers.
	request *broker.TaskRequest
	reason  string // a denial's reason, told to the agent
	failed  int
	err     error // the first error
}

// approve approves a request as asked (or as the earlier approvers proposed).
func approve(ctx context.Context, b Backend, op broker.Operator, req *broker.TaskRequest) tea.Cmd {
	id, agent := req.ID, req.AgentID
	return func() tea.Msg {
		g, err := b.Approve(ctx, op, id)
		return decided(ctx, b, broker.DecisionApprove, op, id, agent, g, err)
	}
}

// narrow grants a request with narrower terms.
func narrow(ctx context.Context, b Backend, op broker.Operator, req *broker.TaskRequest, terms broker.Terms, reason string) tea.Cmd {
	id, agent := req.ID, req.AgentID
	return func() tea.Msg {
		g, err := b.Narrow(ctx, op, id, terms, reason)
		return decided(ctx, b, broker.DecisionNarrow, op, id, agent, g, err)
	}
}

// decided builds the outcome of an approval. No grant and no error means
// the approval was recorded and the request waits for more approvers:
// the request is loaded to say how many.
func decided(ctx context.Context, b Backend, kind broker.DecisionKind, op broker.Operator, id, agent string, g *broker.Grant, err error) decidedMsg {
	m := decidedMsg{kind: kind, op: op, requestIDs: []string{id}, agentID: agent, grant: g, err: err, failed: count(err)}
	if err == nil && g == nil {
		m.request, _ = b.Request(ctx, id) // nil on error: the message says less, nothing breaks
	}
	return m
}

// deny denies one request, or every request of a burst, with one reason.
func deny(ctx context.Context, b Backend, op broker.Operator, reqs []*broker.TaskRequest, reason string) tea.Cmd {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	agent := reqs[0].AgentID
	return func() tea.Msg {
		m := decidedMsg{kind: broker.DecisionDeny, requestIDs: ids, agentID: agent, reason: reason}
		for _, id := range ids {
			if _, err := b.Deny(ctx, op, id, reason); err != nil {
				m.failed++
				if m.err == nil {
					m.err = err
				}
			}
		}
		return m
	}
}

func count(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

// revokedMsg is the outcome of a revocation.
type revokedMsg struct {
	scope      broker.RevocationScope
	target     string
	quarantine bool
	rev        *broker.Revocation
	err        error
}

// revokeGrant revokes one grant (and its follow-ons).
func revokeGrant(ctx context.Context, b Backend, op broker.Operator, grantID, reason string) tea.Cmd {
	return func() tea.Msg {
		rev, err := b.Revoke(ctx, op, grantID, reason)
		return revokedMsg{scope: broker.RevokeGrant, target: grantID, rev: rev, err: err}
	}
}

// revokeAgent revokes everything an agent holds, and quarantines it if asked.
func revokeAgent(ctx context.Context, b Backend, op broker.Operator, agentID, reason string, quarantine bool) tea.Cmd {
	return func() tea.Msg {
		rev, err := b.RevokeAgent(ctx, op, agentID, reason, quarantine)
		return revokedMsg{scope: broker.RevokeAgent, target: agentID, quarantine: quarantine, rev: rev, err: err}
	}
}

// revokeAll revokes every grant and freezes issuance.
func revokeAll(ctx context.Context, b Backend, op broker.Operator, reason string) tea.Cmd {
	return func() tea.Msg {
		rev, err := b.RevokeAll(ctx, op, reason, true)
		return revokedMsg{scope: broker.RevokeAll, rev: rev, err: err}
	}
}

// releasedMsg is the outcome of releasing an agent from quarantine.
type releasedMsg struct {
	agentID string
	err     error
}

// release lifts an agent's quarantine.
func release(ctx context.Context, b Backend, op broker.Operator, agentID string) tea.Cmd {
	return func() tea.Msg {
		return releasedMsg{agentID: agentID, err: b.Release(ctx, op, agentID)}
	}
}

// unfrozenMsg is the outcome of unfreezing issuance.
type unfrozenMsg struct{ err error }

// unfreeze lets approvals and minting resume.
func unfreeze(ctx context.Context, b Backend, op broker.Operator, reason string) tea.Cmd {
	return func() tea.Msg { return unfrozenMsg{err: b.Unfreeze(ctx, op, reason)} }
}

// tickMsg drives countdowns, ages and session expiry.
type tickMsg time.Time

// tick fires after d.
func tick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg(t) })
}
