package broker

import (
	"github.com/writhq/writ/wire"

	"slices"
	"time"
)

// ScopeOpenID is the CIBA scope that asks for an ID token naming the
// approver. It is not a resource scope and carries no authority.
const ScopeOpenID = wire.ScopeOpenID

// ResourceScopes returns the scopes without openid.
func (t Terms) ResourceScopes() []string {
	out := make([]string, 0, len(t.Scopes))
	for _, s := range t.Scopes {
		if s != ScopeOpenID {
			out = append(out, s)
		}
	}
	return out
}

// Clone returns a deep copy.
func (t Terms) Clone() Terms {
	c := t
	c.Scopes = slices.Clone(t.Scopes)
	c.Details = make([]AuthorizationDetail, len(t.Details))
	for i, d := range t.Details {
		c.Details[i] = d.Clone()
	}
	if t.Details == nil {
		c.Details = nil
	}
	return c
}

// ResourceWithin reports whether r is w or a location beneath it, by
// writ's one location rule (CheckLocation): segment by segment, and an
// ambiguous location (a dot segment, a path parameter, an encoded dot or
// slash, …) is within nothing but itself.
func ResourceWithin(r, w string) bool { return wire.ResourceWithin(r, w) }

// HighestRisk returns the highest risk among the scopes at a resource;
// unknown scopes count as critical, so nothing unknown looks harmless.
func (r *Resource) HighestRisk(scopes []string) Risk {
	highest := Risk(0)
	for _, name := range scopes {
		if name == ScopeOpenID {
			continue
		}
		risk := RiskCritical
		if s, ok := r.Scope(name); ok {
			risk = s.Risk
		}
		highest = max(highest, risk)
	}
	return highest
}

// durationMin returns the smallest positive duration of those given.
func durationMin(ds ...time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		if d > 0 && (m == 0 || d < m) {
			m = d
		}
	}
	return m
}
