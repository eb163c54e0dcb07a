package tui

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// PolicyStatusMsg tells the console the policy's live counters and the
// standing approvals, for the Policy page. cmd sends it when the page asks
// (see Options) or on its own schedule.
type PolicyStatusMsg struct {
	ShadowHits map[string]uint64 // by shadow rule (mode: log)
	Standing   []*broker.StandingApproval
	At         time.Time
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
}

func newPolicyPage(a *app) *policyPage { return &policyPage{a: a} }

func (p *policyPage) title() string              { return "Policy" }
func (p *policyPage) filtering() bool            { return false }
func (p *policyPage) setSize(w, h int)           { p.w, p.h = w, h }
func (p *policyPage) refresh()                   {}
func (p *policyPage) update(tea.Msg) tea.Cmd     { return nil }
func (p *policyPage) help() helpKeys             { return helpKeys{} }
func (p *policyPage) onStatus(m PolicyStatusMsg) { p.status = &m }

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
		line("  " + Neutralise(p.file))
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
		for _, s := range p.status.Standing {
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
	left := ""
	if s.State(now) == broker.StandingActive {
		left = " " + countdown(s.ExpiresAt.Sub(now)) + " left"
	}
	return fmt.Sprintf("%-8s %s  %s on %s%s · %s · by %s", state, Neutralise(s.AgentID),
		Neutralise(strings.Join(s.Terms.Actions(), " ")), Neutralise(s.Terms.Resource), left,
		plural(len(s.Uses), "use"), Neutralise(s.CreatedBy.Display()))
}
