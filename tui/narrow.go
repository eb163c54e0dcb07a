package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// narrowItem is one line of the narrow editor.
type narrowItem struct {
	kind   int // itemScope, itemAction, itemTTL, itemResource
	scope  string
	detail int
	action string
	on     bool
}

const (
	itemScope = iota
	itemAction
	itemTTL
	itemResource
)

// ttlSteps are the lifetimes the editor offers, up to the one requested.
var ttlSteps = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, 45 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

// narrowDialog edits what a request will be granted: space toggles each
// scope and each authorization-detail action, ←/→ shorten the TTL and
// narrow the resource, and a live diff shows requested → granted.
type narrowDialog struct {
	op        broker.Operator
	req       *broker.TaskRequest
	items     []narrowItem
	cursor    int
	ttls      []time.Duration
	ttl       int // index into ttls
	resources []string
	resource  int
	// proposedBy names the operator whose approved terms the editor starts
	// from, when policy requires several approvers and one has approved.
	proposedBy string
}

func newNarrowDialog(a *app, op broker.Operator, r *broker.TaskRequest) *narrowDialog {
	n := &narrowDialog{op: op, req: r}
	if k := len(r.Approvals); k > 0 {
		// A later approver narrows what the earlier ones approved, not the
		// request as asked: the editor starts from the proposed terms.
		c := *r
		c.Terms = r.ProposedTerms()
		n.req, n.proposedBy = &c, r.Approvals[k-1].Operator.Display()
		r = n.req
	}
	for _, s := range r.Terms.ResourceScopes() {
		n.items = append(n.items, narrowItem{kind: itemScope, scope: s, on: true})
	}
	for i, d := range r.Terms.Details {
		for _, act := range d.Actions {
			n.items = append(n.items, narrowItem{kind: itemAction, detail: i, action: act, on: true})
		}
	}
	for _, t := range ttlSteps {
		if t < r.Terms.TTL {
			n.ttls = append(n.ttls, t)
		}
	}
	n.ttls = append(n.ttls, r.Terms.TTL)
	n.ttl = len(n.ttls) - 1
	// The resource is exact (it is the token's audience); narrowing where
	// means keeping one of the detail locations asked for.
	n.resources = []string{r.Terms.Resource}
	for _, d := range r.Terms.Details {
		for _, loc := range d.Locations {
			if !slices.Contains(n.resources, loc) {
				n.resources = append(n.resources, loc)
			}
		}
	}
	n.items = append(n.items, narrowItem{kind: itemTTL}, narrowItem{kind: itemResource})
	return n
}

func (n *narrowDialog) closes(id string) bool { return n.req.ID == id }

// terms are what the editor will grant.
func (n *narrowDialog) terms() broker.Terms {
	t := n.req.Terms.Clone()
	t.Scopes = t.Scopes[:0]
	if slices.Contains(n.req.Terms.Scopes, broker.ScopeOpenID) {
		t.Scopes = append(t.Scopes, broker.ScopeOpenID)
	}
	keep := map[int][]string{}
	for _, it := range n.items {
		switch {
		case it.kind == itemScope && it.on:
			t.Scopes = append(t.Scopes, it.scope)
		case it.kind == itemAction && it.on:
			keep[it.detail] = append(keep[it.detail], it.action)
		}
	}
	t.Details = t.Details[:0]
	for i, d := range n.req.Terms.Details {
		if len(d.Actions) == 0 {
			t.Details = append(t.Details, d.Clone())
			continue
		}
		if acts := keep[i]; len(acts) > 0 {
			c := d.Clone()
			c.Actions = acts
			t.Details = append(t.Details, c)
		}
	}
	if n.resource > 0 {
		// Only the chosen location: details that name it keep just it.
		loc := n.resources[n.resource]
		kept := t.Details[:0]
		for _, d := range t.Details {
			if slices.Contains(d.Locations, loc) {
				d.Locations = []string{loc}
				kept = append(kept, d)
			}
		}
		t.Details = kept
	}
	if len(t.Details) == 0 {
		t.Details = nil
	}
	t.TTL = n.ttls[n.ttl]
	// The domain's rule: a dropped scope leaves every detail, and a detail
	// left with no action goes.
	return t.Normalized()
}

// scopeOn reports whether the editor keeps scope s.
func (n *narrowDialog) scopeOn(s string) bool {
	return slices.ContainsFunc(n.items, func(it narrowItem) bool { return it.kind == itemScope && it.scope == s && it.on })
}

// unchanged reports whether the editor grants exactly what was asked.
func (n *narrowDialog) unchanged() bool {
	t := n.terms()
	return t.NarrowerThan(n.req.Terms) == "" && n.req.Terms.NarrowerThan(t) == "" &&
		len(t.Details) == len(n.req.Terms.Details) && n.resource == 0 && n.ttl == len(n.ttls)-1 &&
		!slices.ContainsFunc(n.items, func(it narrowItem) bool { return (it.kind == itemScope || it.kind == itemAction) && !it.on })
}

func (n *narrowDialog) update(a *app, msg tea.KeyPressMsg) (bool, tea.Cmd) {
	k := a.keys
	it := &n.items[n.cursor]
	switch {
	case key.Matches(msg, k.Cancel):
		a.say("narrowing cancelled: nothing was granted")
		return true, nil
	case key.Matches(msg, k.Up):
		n.cursor = max(n.cursor-1, 0)
	case key.Matches(msg, k.Down), msg.String() == "tab":
		n.cursor = min(n.cursor+1, len(n.items)-1)
	case msg.String() == "space" || msg.String() == " ":
		if it.kind == itemScope || it.kind == itemAction {
			it.on = !it.on
		}
	case key.Matches(msg, k.Shorten):
		switch it.kind {
		case itemTTL:
			n.ttl = max(n.ttl-1, 0)
		case itemResource:
			n.resource = min(n.resource+1, len(n.resources)-1)
		}
	case key.Matches(msg, k.Lengthen):
		switch it.kind {
		case itemTTL:
			n.ttl = min(n.ttl+1, len(n.ttls)-1)
		case itemResource:
			n.resource = max(n.resource-1, 0)
		}
	case key.Matches(msg, k.Standing):
		// Grant these terms and allow them again: the standing dialog
		// takes this dialog's place.
		t := n.terms()
		if len(t.ResourceScopes()) == 0 {
			a.fail("keep at least one scope, or deny the request instead (d)")
			return false, nil
		}
		if why := standingOffer(a, n.req); why != "" {
			a.fail(why)
			return false, nil
		}
		var granted *broker.Terms
		if !n.unchanged() {
			granted = &t
		}
		a.dialogs[len(a.dialogs)-1] = newStandingDialog(a, n.op, n.req, Neutralise(n.req.AgentID), granted)
		return false, nil
	case key.Matches(msg, k.Confirm):
		t := n.terms()
		if len(t.ResourceScopes()) == 0 {
			a.fail("keep at least one scope, or deny the request instead (d)")
			return false, nil
		}
		if n.unchanged() {
			return true, approve(a.ctx, a.b, n.op, n.req)
		}
		return true, narrow(a.ctx, a.b, n.op, n.req, t, "narrowed in the console")
	}
	return false, nil
}

func (n *narrowDialog) view(a *app, w int) string {
	th := a.th
	r := n.req
	inner := dialogWidth(w)
	var b strings.Builder
	fmt.Fprintf(&b, "%s · %s\n", th.Strong.Render(Neutralise(r.AgentID)), trunc(Neutralise(r.Intent), inner-len(r.AgentID)-3))
	if n.proposedBy != "" {
		b.WriteString(th.Muted.Render(trunc("narrowing what "+Neutralise(n.proposedBy)+" approved: nothing wider can be granted", inner)) + "\n")
	}
	lastDetail := -1
	for i, it := range n.items {
		var line string
		box := "[x]"
		if !it.on {
			box = "[ ]"
		}
		switch it.kind {
		case itemScope:
			info := a.d.scopeInfo(r.Terms.Resource, it.scope)
			line = fmt.Sprintf("%s scope  %s %s", box, riskTag(info.Risk), Neutralise(it.scope))
		case itemAction:
			if it.detail != lastDetail {
				lastDetail = it.detail
				id := r.Terms.Details[it.detail].Identifier
				b.WriteString(th.Muted.Render(fmt.Sprintf("\n    detail %d %s", it.detail+1, Neutralise(id))))
			}
			line = fmt.Sprintf("%s action %s", box, Neutralise(it.action))
			if it.on && !n.scopeOn(it.action) {
				// The domain's rule: a dropped scope leaves every detail.
				line = fmt.Sprintf("[-] action %s", Neutralise(it.action)) + th.Muted.Render("  (dropped with its scope)")
			}
		case itemTTL:
			asked := "asked"
			if n.proposedBy != "" {
				asked = "approved"
			}
			line = fmt.Sprintf("    TTL    ◂ %s ▸  (%s %s)", ttl(n.ttls[n.ttl]), asked, ttl(r.Terms.TTL))
		case itemResource:
			where := n.resources[n.resource]
			if n.resource == 0 {
				where += " (every location asked)"
			}
			line = "    location ◂ " + trunc(Neutralise(where), inner-20) + " ▸"
			if len(n.resources) == 1 {
				line = "    resource " + trunc(Neutralise(n.resources[0]), inner-20) + "  (no detail locations asked)"
			}
		}
		b.WriteString("\n")
		if i == n.cursor {
			b.WriteString(th.Selected.Render("▸" + line))
		} else {
			b.WriteString(" " + line)
		}
	}
	b.WriteString("\n" + th.Title.Render("requested → granted") + th.Muted.Render("   space toggles · ←/→ TTL and location · enter grants") + "\n")
	b.WriteString(strings.Join(n.diff(a, inner), "\n"))
	return frame(a, "Narrow and grant", b.String(), w)
}

// diff is the live requested → granted comparison.
func (n *narrowDialog) diff(a *app, w int) []string {
	th := a.th
	req, got := n.req.Terms, n.terms()
	var out []string
	var kept, dropped []string
	for _, s := range req.ResourceScopes() {
		if slices.Contains(got.Scopes, s) {
			kept = append(kept, Neutralise(s))
		} else {
			dropped = append(dropped, Neutralise(s))
		}
	}
	out = append(out, wrapHang("scopes   "+strings.Join(kept, ", "), w, 9)...)
	for _, s := range dropped {
		out = append(out, th.DiffRemove.Render("  - "+s)+th.Muted.Render("  (narrowed away)"))
	}
	for i, d := range req.Details {
		if len(d.Actions) == 0 {
			continue
		}
		var acts []string
		for _, g := range got.Details {
			if g.Identifier == d.Identifier && g.Type == d.Type {
				acts = g.Actions
			}
		}
		line := fmt.Sprintf("detail %d %s → %s", i+1, neutraliseList(d.Actions), neutraliseList(acts))
		if len(acts) == 0 {
			line = fmt.Sprintf("detail %d %s → (dropped)", i+1, neutraliseList(d.Actions))
		}
		for _, part := range wrapHang(line, w, 9) {
			if len(acts) != len(d.Actions) {
				part = th.Warn.Render(part)
			}
			out = append(out, part)
		}
	}
	tl := "TTL      " + ttl(req.TTL) + " → " + ttl(got.TTL)
	if got.TTL != req.TTL {
		tl = th.Warn.Render(tl)
	}
	out = append(out, tl)
	rl := "resource " + trunc(Neutralise(got.Resource), w-10)
	if got.Resource != req.Resource {
		rl = th.Warn.Render(rl + " (narrowed)")
	}
	out = append(out, rl)
	if len(got.ResourceScopes()) == 0 {
		out = append(out, th.Error.Render("no scope left: enter refuses; deny instead"))
	} else if n.unchanged() && n.proposedBy != "" {
		out = append(out, th.Muted.Render("unchanged: enter approves as "+Neutralise(n.proposedBy)+" approved"))
	} else if n.unchanged() {
		out = append(out, th.Muted.Render("unchanged: enter approves as asked"))
	}
	return out
}

func (n *narrowDialog) help(a *app) []key.Binding {
	k := a.keys
	return []key.Binding{k.Toggle, k.Shorten, k.Lengthen, bind("enter", "grant"), bind("s", "grant + standing"), k.Cancel}
}
