package wire

import (
	"slices"
	"time"
)

// TaskDetailType is writ's RFC 9396 authorization_details type.
const TaskDetailType = "https://writ.dev/agent-task"

// AuthorizationDetail is one RFC 9396 authorization detail. writ accepts
// its task type only; a list left out does not restrict (§2).
type AuthorizationDetail struct {
	Type       string   `json:"type"`
	Locations  []string `json:"locations,omitempty"`
	Actions    []string `json:"actions,omitempty"`
	Datatypes  []string `json:"datatypes,omitempty"`
	Identifier string   `json:"identifier,omitempty"`
	Privileges []string `json:"privileges,omitempty"`
	Intent     string   `json:"intent,omitempty"`
}

// AllowsAt is writ's one rule for whether scopes and authorization
// details allow action at location (a URI within the token's resource):
// the scopes must name the action, and when any detail names the action,
// one of those details must cover the location (a detail without
// locations covers the whole resource; a location covers the paths
// beneath it, by CheckLocation). An action no detail names applies to the
// whole resource. An ambiguous location is allowed nowhere. writ's broker
// judges tokens by it, and the guard asks it of every token it accepts.
func AllowsAt(scopes []string, details []AuthorizationDetail, location, action string) bool {
	if action == "" || action == ScopeOpenID || !slices.Contains(scopes, action) {
		return false
	}
	if _, err := CheckLocation(location, location); err != nil {
		return false
	}
	named := false
	for _, d := range details {
		if !slices.Contains(d.Actions, action) {
			continue
		}
		named = true
		if len(d.Locations) == 0 || slices.ContainsFunc(d.Locations, func(l string) bool { return ResourceWithin(location, l) }) {
			return true
		}
	}
	return !named
}

// ResourceWithin reports whether r is w or a location beneath it, by
// CheckLocation: segment by segment, and an ambiguous location (a dot
// segment, a path parameter, an encoded dot or slash, …) is within
// nothing but itself.
func ResourceWithin(r, w string) bool {
	if r == w {
		return true
	}
	_, err := CheckLocation(r, w)
	return err == nil
}

// ScopeOpenID is the CIBA scope that asks for an ID token naming the
// approving operator.
const ScopeOpenID = "openid"

// DefaultReviewDeadline is how long writ waits for a decision on a request
// when neither the request nor the configuration says otherwise.
const DefaultReviewDeadline = 10 * time.Minute

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
