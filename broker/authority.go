package broker

import (
	"slices"
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
