package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Authority is what a request, a decision or a grant allows, as one value:
// the resource (the token's audience), the set of actions (every resource
// scope and every action of every authorization detail), each detail's
// locations, and an absolute not-after time. Risk, policy, narrowing,
// follow-on containment, minting, introspection, the guard and the console
// all judge this one value, so none of them can see less than another.
type Authority struct {
	Resource string
	// Actions is sorted and has no duplicates; openid is not an action.
	Actions []string
	Details []AuthorizationDetail
	// NotAfter is when the authority ends; zero for a request not yet
	// granted (its TTL is then the only bound).
	NotAfter time.Time
}

// Actions returns every action the terms carry: each resource scope and
// each action of every detail, sorted, without duplicates. openid is a
// protocol scope, not an action.
func (t Terms) Actions() []string {
	out := make([]string, 0, len(t.Scopes))
	for _, s := range t.Scopes {
		if s != ScopeOpenID && s != "" {
			out = append(out, s)
		}
	}
	for _, d := range t.Details {
		for _, a := range d.Actions {
			if a != ScopeOpenID && a != "" {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Authority returns the terms as an Authority ending at notAfter.
func (t Terms) Authority(notAfter time.Time) Authority {
	details := make([]AuthorizationDetail, len(t.Details))
	for i, d := range t.Details {
		details[i] = d.Clone()
	}
	return Authority{Resource: t.Resource, Actions: t.Actions(), Details: details, NotAfter: notAfter}
}

// Authority is the grant's authority: its terms, ending at its expiry.
func (g *Grant) Authority() Authority { return g.Terms.Authority(g.ExpiresAt) }

// RiskOf is the highest risk among every action the terms carry, scopes
// and detail actions alike; an action the resource's catalogue does not
// know counts as critical, so nothing unknown looks harmless.
func (r *Resource) RiskOf(t Terms) Risk {
	return r.HighestRisk(t.Actions())
}

// DetailActionsOutsideScopes returns a message naming the first detail
// action that the terms' scopes do not name, or "". Every action a detail
// carries must also be a requested scope: a token whose details allow
// more than its scopes would mean two different things to two readers.
func (t Terms) DetailActionsOutsideScopes() string {
	for i, d := range t.Details {
		for _, a := range d.Actions {
			if !slices.Contains(t.Scopes, a) {
				return fmt.Sprintf("authorization_details[%d]: action %s is not among the requested scopes (%s); ask for it in scope too",
					i, a, strings.Join(t.ResourceScopes(), " "))
			}
		}
	}
	return ""
}

// Normalized returns the terms with every detail action that is not among
// the scopes removed, and every detail left without an action dropped. It
// is what a narrowing means: dropping a scope drops it everywhere.
func (t Terms) Normalized() Terms {
	out := t.Clone()
	out.Details = out.Details[:0:0]
	for _, d := range t.Details {
		d = d.Clone()
		d.Actions = slices.DeleteFunc(d.Actions, func(a string) bool { return !slices.Contains(t.Scopes, a) })
		if len(d.Actions) > 0 {
			out.Details = append(out.Details, d)
		}
	}
	if len(out.Details) == 0 {
		out.Details = nil
	}
	return out
}

// NarrowerThan reports why t is not within wider, or "" if it is: every
// scope and every action asked for, each detail a subset of one detail
// asked for, exactly the same resource, a TTL no longer. An empty result
// is what makes a narrowing legal; anything else is a widening and is
// refused. The resource is exact: a path beneath it is narrowed with
// detail locations, so a token's audience is always a configured resource.
func (t Terms) NarrowerThan(wider Terms) string {
	for _, s := range t.Scopes {
		if !slices.Contains(wider.Scopes, s) {
			return "scope " + s + " was not requested"
		}
	}
	wideActions := wider.Actions()
	for _, a := range t.Actions() {
		if !slices.Contains(wideActions, a) {
			return "action " + a + " was not requested"
		}
	}
	if t.Resource != wider.Resource {
		return "resource " + t.Resource + " is not " + wider.Resource + " (narrow a resource with detail locations)"
	}
	if t.TTL <= 0 {
		return "TTL must be positive"
	}
	if t.TTL > wider.TTL {
		return "TTL " + shortDuration(t.TTL) + " is longer than the " + shortDuration(wider.TTL) + " requested"
	}
	for i, d := range t.Details {
		if !slices.ContainsFunc(wider.Details, d.Within) {
			return "authorization detail " + strconv.Itoa(i+1) + " is not a subset of any requested detail"
		}
	}
	if a := unrestricted(t.Actions(), t.Details, wider.Details); a != "" {
		return "action " + a + " was asked for within authorization details only, and no detail is left for it"
	}
	return ""
}

// unrestricted returns the first action that wide limits to detail
// locations but narrow does not, or "": dropping the last detail that
// names an action would spread it over the whole resource.
func unrestricted(actions []string, narrow, wide []AuthorizationDetail) string {
	for _, a := range actions {
		if namesAction(wide, a) && !namesAction(narrow, a) {
			return a
		}
	}
	return ""
}

// namesAction reports whether any detail names the action.
func namesAction(details []AuthorizationDetail, action string) bool {
	return slices.ContainsFunc(details, func(d AuthorizationDetail) bool { return slices.Contains(d.Actions, action) })
}

// Within reports why a is not contained in parent, or "" if it is: the
// same resource, no action the parent lacks, each detail within one of
// the parent's (a parent without details is unrestricted within its
// resource), and an end no later than the parent's. It is what "a
// follow-on stays within its parent" means.
func (a Authority) Within(parent Authority) string {
	if a.Resource != parent.Resource {
		return "resource " + a.Resource + " is not the parent's " + parent.Resource
	}
	for _, x := range a.Actions {
		if !slices.Contains(parent.Actions, x) {
			return "action " + x + " is not in the parent grant"
		}
	}
	for i, d := range a.Details {
		// A detail for an action the parent held everywhere is within it.
		if !slices.ContainsFunc(d.Actions, func(x string) bool { return namesAction(parent.Details, x) }) {
			continue
		}
		if !slices.ContainsFunc(parent.Details, func(p AuthorizationDetail) bool { return detailWithinParent(d, p) }) {
			return "authorization detail " + strconv.Itoa(i+1) + " is not within any of the parent's details"
		}
	}
	if x := unrestricted(a.Actions, a.Details, parent.Details); x != "" {
		return "the parent holds " + x + " only at its detail locations, and the follow-on asks for it everywhere"
	}
	if !parent.NotAfter.IsZero() && !a.NotAfter.IsZero() && a.NotAfter.After(parent.NotAfter) {
		return "it would end at " + a.NotAfter.UTC().Format(time.TimeOnly) + ", after its parent (" + parent.NotAfter.UTC().Format(time.TimeOnly) + ")"
	}
	return ""
}

// detailWithinParent is Within without the intent: a follow-on states its
// own intent, but may not reach further than the parent's detail.
func detailWithinParent(d, p AuthorizationDetail) bool {
	d.Intent = p.Intent
	return d.Within(p)
}

// Diff is how one authority differs from another (a follow-on from its
// parent, a narrowing from a request): what it adds and what it leaves out.
type Diff struct {
	Added, Removed []string // actions
	Resource       string   // the other resource, when it differs
	Later          bool     // ends after the other
}

// Empty reports whether nothing differs.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && d.Resource == "" && !d.Later
}

// DiffFrom returns how a differs from base.
func (a Authority) DiffFrom(base Authority) Diff {
	var d Diff
	for _, x := range a.Actions {
		if !slices.Contains(base.Actions, x) {
			d.Added = append(d.Added, x)
		}
	}
	for _, x := range base.Actions {
		if !slices.Contains(a.Actions, x) {
			d.Removed = append(d.Removed, x)
		}
	}
	if a.Resource != base.Resource {
		d.Resource = base.Resource
	}
	d.Later = !base.NotAfter.IsZero() && !a.NotAfter.IsZero() && a.NotAfter.After(base.NotAfter)
	return d
}

// ResourcesOverlap reports whether two resource URIs are the same or one
// lies beneath the other. Configured resources must not overlap: a token
// for one must never be usable at another, and the revocation feed must
// send a grant's events to exactly one resource's receivers.
func ResourcesOverlap(a, b string) bool {
	return strings.EqualFold(a, b) || ResourceWithin(a, b) || ResourceWithin(b, a) ||
		ResourceWithin(strings.ToLower(a), strings.ToLower(b)) || ResourceWithin(strings.ToLower(b), strings.ToLower(a))
}
