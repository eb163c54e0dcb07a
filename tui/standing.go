package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// Standing approvals from a decision: when the operator approves (or
// narrows) a low- or medium-risk request, they may also allow the same
// agent the same or fewer actions on the same resource for a bounded
// time. The domain judges what may be made standing (risk, follow-on,
// maximum); the console only offers it where the domain would accept it
// and shows the domain's refusal otherwise.

// standingChoices are the durations the console offers, shortest first;
// those over the maximum in force are not offered.
var standingChoices = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

// standingFor lists the durations up to max (broker.DefaultMaxStanding
// when zero).
func standingFor(max time.Duration) []time.Duration {
	if max <= 0 {
		max = broker.DefaultMaxStanding
	}
	out := slices.DeleteFunc(slices.Clone(standingChoices), func(d time.Duration) bool { return d > max })
	if len(out) == 0 {
		out = []time.Duration{max}
	}
	return out
}

// maxStanding is the longest standing approval the broker accepts, as it
// last said (PolicyStatusMsg), else the default.
func (a *app) maxStanding() time.Duration {
	if a.standingMax > 0 {
		return a.standingMax
	}
	return broker.DefaultMaxStanding
}

// standingOffer says why a standing approval is not offered for r, or ""
// when it is, by the broker's own rule (broker.StandingRefusal): this
// spares the operator a dialog that cannot succeed.
func standingOffer(a *app, r *broker.TaskRequest) string {
	risk := a.d.requestRisk(r)
	if risk == 0 {
		return "the request's risk is unknown: a standing approval is never made for it"
	}
	if err := broker.StandingRefusal(r, risk); err != nil {
		return broker.ErrorMessage(err)
	}
	return ""
}

// standingMsg is the outcome of approving a request and making a standing
// approval from it.
type standingMsg struct {
	decided decidedMsg
	sa      *broker.StandingApproval
	err     error // of making the standing approval; the decision stands
}

// approveStanding approves (terms nil) or narrows a request, then makes a
// standing approval from it for d.
func approveStanding(ctx context.Context, b Backend, op broker.Operator, req *broker.TaskRequest, terms *broker.Terms,
	d time.Duration, reason string, changed func()) tea.Cmd {
	id, agent := req.ID, req.AgentID
	var t broker.Terms
	if terms != nil {
		t = terms.Clone()
	}
	narrowed := terms != nil
	return func() tea.Msg {
		var g *broker.Grant
		var err error
		kind := broker.DecisionApprove
		if narrowed {
			kind = broker.DecisionNarrow
			g, err = b.Narrow(ctx, op, id, t, "narrowed in the console")
		} else {
			g, err = b.Approve(ctx, op, id)
		}
		m := standingMsg{decided: decided(ctx, b, kind, op, id, agent, g, err)}
		if err != nil || g == nil {
			return m
		}
		m.sa, m.err = b.CreateStanding(ctx, op, id, d, reason)
		if m.err == nil && changed != nil {
			changed()
		}
		return m
	}
}

// standingRevokedMsg is the outcome of revoking a standing approval.
type standingRevokedMsg struct {
	id  string
	sa  *broker.StandingApproval
	err error
}

// revokeStanding ends a standing approval.
func revokeStanding(ctx context.Context, b Backend, op broker.Operator, id, reason string, changed func()) tea.Cmd {
	return func() tea.Msg {
		sa, err := b.RevokeStanding(ctx, op, id, reason)
		if err == nil && changed != nil {
			changed()
		}
		return standingRevokedMsg{id: id, sa: sa, err: err}
	}
}

// onStanding reports an approval with a standing approval made from it.
func (m *Model) onStanding(msg standingMsg) tea.Cmd {
	m.onDecided(msg.decided)
	a := m.a
	switch {
	case msg.decided.err != nil || msg.decided.grant == nil:
		// The decision failed or waits for more approvers: nothing standing.
	case msg.err != nil:
		a.fail("approved, but no standing approval: " + actionError(msg.err))
	case msg.sa != nil:
		m.policy.putStanding(msg.sa)
		a.say(fmt.Sprintf("standing approval %s: %s may repeat this for %s without a person (Policy page, 5)",
			shortID(msg.sa.ID), Neutralise(msg.sa.AgentID), ttl(msg.sa.ExpiresAt.Sub(msg.sa.CreatedAt))))
	}
	return m.pending.wantParent()
}

// onStandingRevoked reports a revoked standing approval.
func (m *Model) onStandingRevoked(msg standingRevokedMsg) {
	a := m.a
	if msg.err != nil {
		a.fail("revoke standing approval " + shortID(msg.id) + ": " + actionError(msg.err))
		return
	}
	m.policy.putStanding(msg.sa)
	a.say("standing approval " + shortID(msg.id) + " revoked: no request is approved under it from now on; its grants continue until revoked")
}

// standingDialog approves a request and makes a standing approval from
// it: the operator picks how long (←/→) and may type a reason.
type standingDialog struct {
	op      broker.Operator
	req     *broker.TaskRequest
	agent   string
	terms   *broker.Terms // nil: as asked; else the narrowed terms
	choices []time.Duration
	choice  int
	edit    lineEdit
}

func newStandingDialog(a *app, op broker.Operator, r *broker.TaskRequest, agent string, terms *broker.Terms) *standingDialog {
	d := &standingDialog{op: op, req: r, agent: agent, terms: terms, choices: standingFor(a.maxStanding()), edit: lineEdit{limit: 200}}
	d.choice = max(slices.Index(d.choices, 30*time.Minute), 0)
	return d
}

func (s *standingDialog) typing() bool            { return true }
func (s *standingDialog) closes(id string) bool   { return s.req.ID == id }
func (s *standingDialog) duration() time.Duration { return s.choices[s.choice] }
func (s *standingDialog) granted() broker.Terms {
	if s.terms != nil {
		return *s.terms
	}
	return s.req.ProposedTerms()
}

func (s *standingDialog) reason() string {
	if r := strings.TrimSpace(s.edit.String()); r != "" {
		return r
	}
	return "recurring task, approved from the console"
}

func (s *standingDialog) update(a *app, msg tea.KeyPressMsg) (bool, tea.Cmd) {
	k := a.keys
	switch {
	case key.Matches(msg, k.Cancel):
		a.say("cancelled: nothing was approved")
		return true, nil
	case msg.String() == "left":
		s.choice = max(s.choice-1, 0)
		return false, nil
	case msg.String() == "right":
		s.choice = min(s.choice+1, len(s.choices)-1)
		return false, nil
	case key.Matches(msg, k.Confirm):
		return true, approveStanding(a.ctx, a.b, s.op, s.req, s.terms, s.duration(), s.reason(), a.opts.StandingChanged)
	}
	s.edit.update(msg)
	return false, nil
}

func (s *standingDialog) view(a *app, w int) string {
	th := a.th
	t := s.granted()
	var b strings.Builder
	fmt.Fprintf(&b, "Approve now, then for %s approve without a person\n", th.Strong.Render(ttl(s.duration())))
	fmt.Fprintf(&b, "%s's requests for the same or fewer actions:\n", s.agent)
	b.WriteString("  " + Neutralise(strings.Join(t.Actions(), " ")) + "\n")
	fmt.Fprintf(&b, "  on %s, each for at most %s\n\n", Neutralise(t.Resource), ttl(t.TTL))
	b.WriteString("For: ")
	for i, d := range s.choices {
		if i == s.choice {
			b.WriteString(th.Selected.Render("[" + ttl(d) + "]"))
		} else {
			b.WriteString(" " + ttl(d) + " ")
		}
		b.WriteString(" ")
	}
	b.WriteString(th.Muted.Render("(←/→, at most " + ttl(a.maxStanding()) + ")"))
	b.WriteString("\nReason: " + th.Strong.Render(s.edit.view(min(w-16, 60))) + "\n")
	b.WriteString(th.Muted.Render("It is audited under you, listed on the Policy page (5) with its uses, and revocable there."))
	b.WriteString("\n\n" + th.Strong.Render("enter") + " approve + standing   " + th.Strong.Render("esc") + " cancel")
	return frame(a, "Approve and allow again?", b.String(), w)
}

func (s *standingDialog) help(a *app) []key.Binding {
	return []key.Binding{bind("enter", "approve + standing"), bind("←/→", "how long"), a.keys.Cancel}
}

// approveStandingRow opens the standing dialog for the selected request.
func (p *pendingPage) approveStandingRow(row *pendingRow) tea.Cmd {
	a := p.a
	op, ok := p.canApprove(row, "approved")
	if !ok {
		return nil
	}
	r := row.reqs[0]
	if why := standingOffer(a, r); why != "" {
		a.fail(why)
		return nil
	}
	a.push(newStandingDialog(a, op, r, row.agent, nil))
	return nil
}
