package tui

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// PolicyStatusMsg tells the console the policy's live counters and the
// standing approvals, for the Policy page. cmd sends it when the page asks
// (see Options) or on its own schedule.
type PolicyStatusMsg struct {
	// File and Rules are the policy file in force ("" and 0 for none);
	// FileErr is why it last failed to reload ("" when it is in force).
	File, FileErr string
	Rules         int
	ShadowHits    map[string]uint64 // by shadow rule (mode: log)
	Standing      []*broker.StandingApproval
	// MaxStanding is the longest standing approval the broker accepts;
	// zero when not known (the console then offers up to
	// broker.DefaultMaxStanding and shows the broker's refusal).
	MaxStanding time.Duration
	At          time.Time
}

// policyPage shows the policy in force: its file, when it loaded and any
// error since, the shadow rules' hits, the standing approvals with their
// countdowns and uses, and the last replay summary.
type policyPage struct {
	a        *app
	w, h     int
	file     string
	rules    int
	loadedAt time.Time
	err      string // neutralised
	replay   string // neutralised
	status   *PolicyStatusMsg
	cursor   int // the selected standing approval
}

func newPolicyPage(a *app) *policyPage { return &policyPage{a: a} }

func (p *policyPage) title() string    { return "Policy" }
func (p *policyPage) filtering() bool  { return false }
func (p *policyPage) setSize(w, h int) { p.w, p.h = w, h }
func (p *policyPage) refresh()         {}

// onStatus takes the broker's counters and standing approvals.
func (p *policyPage) onStatus(m PolicyStatusMsg) {
	m.Standing = slices.Clone(m.Standing)
	p.status = &m
	if m.File != "" {
		// In force before the console started, or reloaded at a remote
		// server: the page learns the file from the status (when it
		// loaded is known only for a reload this console saw).
		if m.File != p.file || m.Rules != p.rules {
			p.loadedAt = time.Time{}
		}
		p.file, p.rules, p.err = m.File, m.Rules, Neutralise(m.FileErr)
	}
	if m.MaxStanding > 0 {
		p.a.standingMax = m.MaxStanding
	}
	p.cursor = min(p.cursor, max(len(m.Standing)-1, 0))
}

// putStanding shows a standing approval the console just made or revoked,
// before the next status arrives.
func (p *policyPage) putStanding(sa *broker.StandingApproval) {
	if sa == nil {
		return
	}
	if p.status == nil {
		p.status = &PolicyStatusMsg{At: p.a.now}
	}
	if i := slices.IndexFunc(p.status.Standing, func(s *broker.StandingApproval) bool { return s.ID == sa.ID }); i >= 0 {
		p.status.Standing[i] = sa
		return
	}
	p.status.Standing = append([]*broker.StandingApproval{sa}, p.status.Standing...)
}

// selected is the standing approval under the cursor.
func (p *policyPage) selected() *broker.StandingApproval {
	if p.status == nil || p.cursor >= len(p.status.Standing) {
		return nil
	}
	return p.status.Standing[p.cursor]
}

func (p *policyPage) update(msg tea.Msg) tea.Cmd {
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	k, n := p.a.keys, 0
	if p.status != nil {
		n = len(p.status.Standing)
	}
	switch {
	case key.Matches(km, k.Up):
		p.cursor = max(p.cursor-1, 0)
	case key.Matches(km, k.Down):
		p.cursor = min(p.cursor+1, max(n-1, 0))
	case key.Matches(km, k.Revoke):
		p.askRevoke()
	}
	return nil
}

// askRevoke confirms revoking the selected standing approval: it stops
// future approvals under it; the grants it made continue until revoked.
// Revoking never waits for a sign-in.
func (p *policyPage) askRevoke() {
	a := p.a
	sa := p.selected()
	if sa == nil {
		a.fail("no standing approval to revoke")
		return
	}
	if st := sa.State(a.now); st != broker.StandingActive {
		a.fail("standing approval " + shortID(sa.ID) + " is " + string(st) + ": nothing to revoke")
		return
	}
	op := a.revoker()
	id := sa.ID
	body := fmt.Sprintf("Revoke standing approval %s: %s's requests for %s on %s then wait for a person again.\n"+
		"The grants it made continue until revoked. Audited under %s.",
		Neutralise(id), Neutralise(sa.AgentID), Neutralise(strings.Join(sa.Terms.Actions(), " ")), Neutralise(sa.Terms.Resource),
		Neutralise(op.Display()))
	a.push(newReasonDialog("Revoke standing approval", body, "revoke", standingRevokePresets, func(a *app, reason string) tea.Cmd {
		return revokeStanding(a.ctx, a.b, op, id, reason, a.opts.StandingChanged)
	}))
}

// standingRevokePresets are the usual reasons to end a standing approval.
var standingRevokePresets = []string{
	"the recurring task is done",
	"the agent behaves unexpectedly: investigating",
	"every request should be seen by a person again",
}

func (p *policyPage) help() helpKeys {
	k := p.a.keys
	return helpKeys{short: []key.Binding{k.Revoke}, full: [][]key.Binding{{k.Up, k.Down, k.Revoke}}}
}

// onPolicy records a reload, or why the file did not reload.
func (p *policyPage) onPolicy(m PolicyMsg, now time.Time) {
	p.file = m.File
	if m.Err != nil {
		p.err = Neutralise(m.Err.Error())
		return
	}
	p.rules, p.loadedAt, p.err = m.Rules, now, ""
}

// onReplay records the last replay summary.
func (p *policyPage) onReplay(m PolicyReplayMsg) {
	if m.Err != nil {
		p.replay = "replay failed: " + Neutralise(m.Err.Error())
		return
	}
	p.replay = Neutralise(m.Summary)
}

func (p *policyPage) view() string {
	a, th := p.a, p.a.th
	var b []string
	line := func(s string) { b = append(b, fit(s, p.w)) }
	line(th.Title.Render("Policy in force"))
	switch {
	case p.file == "":
		line("  no policy file: every request goes to an operator")
	case p.loadedAt.IsZero():
		line(fmt.Sprintf("  %s · %s", Neutralise(p.file), plural(p.rules, "rule")))
	default:
		line(fmt.Sprintf("  %s · %s · loaded %s ago", Neutralise(p.file), plural(p.rules, "rule"), ago(a.now, p.loadedAt)))
	}
	if p.err != "" {
		line("  " + th.Error.Render("NOT RELOADED: "+p.err))
	}
	line("")
	line(th.Title.Render("Shadow rules (mode: log)"))
	if p.status == nil || len(p.status.ShadowHits) == 0 {
		line("  no shadow rule has matched")
	} else {
		for _, r := range slices.Sorted(maps.Keys(p.status.ShadowHits)) {
			line(fmt.Sprintf("  %-40s %s", Neutralise(r), plural(int(p.status.ShadowHits[r]), "hit")))
		}
	}
	line("")
	line(th.Title.Render("Standing approvals"))
	if p.status == nil || len(p.status.Standing) == 0 {
		line("  none")
	} else {
		for i, s := range p.status.Standing {
			if i == p.cursor {
				line(th.Selected.Render("▸ " + p.standingLine(s)))
				continue
			}
			line("  " + p.standingLine(s))
		}
	}
	line("")
	line(th.Title.Render("Last replay (24 h)"))
	line("  " + cmp.Or(p.replay, "none yet: a replay runs when the policy file reloads"))
	for len(b) < p.h {
		b = append(b, strings.Repeat(" ", max(p.w, 0)))
	}
	return strings.Join(b[:min(len(b), max(p.h, 1))], "\n")
}

// standingLine is one standing approval: its state (as text, not colour
// alone), agent, actions, countdown, uses and who made it.
func (p *policyPage) standingLine(s *broker.StandingApproval) string {
	now := p.a.now
	state := strings.ToUpper(string(s.State(now)))
	left := "-"
	if s.State(now) == broker.StandingActive {
		left = countdown(s.ExpiresAt.Sub(now)) + " left"
	}
	// What changes (state, time left, uses) first, so a narrow terminal
	// cuts the description, never the countdown.
	return fmt.Sprintf("%-8s %-13s %-7s %s  %s on %s · by %s · %s", state, left, plural(len(s.Uses), "use"), Neutralise(s.AgentID),
		Neutralise(strings.Join(s.Terms.Actions(), " ")), Neutralise(s.Terms.Resource),
		Neutralise(s.CreatedBy.Display()), Neutralise(s.ID))
}
