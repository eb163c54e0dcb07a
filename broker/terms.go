package broker

import (
	"slices"
	"time"
)

// ScopeOpenID is the CIBA scope that asks for an ID token naming the
// approver. It is not a resource scope and carries no authority.
const ScopeOpenID = "openid"

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

// Clone returns a deep copy.
func (d AuthorizationDetail) Clone() AuthorizationDetail {
	c := d
	c.Locations = slices.Clone(d.Locations)
	c.Actions = slices.Clone(d.Actions)
	c.Datatypes = slices.Clone(d.Datatypes)
	c.Privileges = slices.Clone(d.Privileges)
	return c
}

// Within reports whether d grants no more than w: same type, identifier and
// intent, and each list a subset of w's. A list w restricts may not be
// dropped (an absent list would mean "unrestricted"); a list w leaves
// absent may not be added.
func (d AuthorizationDetail) Within(w AuthorizationDetail) bool {
	if d.Type != w.Type || d.Identifier != w.Identifier || d.Intent != w.Intent {
		return false
	}
	return listWithin(d.Locations, w.Locations) && listWithin(d.Actions, w.Actions) &&
		listWithin(d.Datatypes, w.Datatypes) && listWithin(d.Privileges, w.Privileges)
}

func listWithin(narrow, wide []string) bool {
	if len(wide) == 0 {
		return len(narrow) == 0
	}
	if len(narrow) == 0 {
		return false
	}
	for _, v := range narrow {
		if !slices.Contains(wide, v) {
			return false
		}
	}
	return true
}

// ResourceWithin reports whether r is w or a location beneath it, by
// writ's one location rule (CheckLocation): segment by segment, and an
// ambiguous location (a dot segment, a path parameter, an encoded dot or
// slash, …) is within nothing but itself.
func ResourceWithin(r, w string) bool {
	if r == w {
		return true
	}
	_, err := CheckLocation(r, w)
	return err == nil
}

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
