package wire

import (
	"net/url"
	"slices"
	"strings"
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

// Covers reports whether d allows action at location: its actions name the
// action (or it lists none) and one of its locations is location or a path
// above it (or it lists none). RFC 9396 §2: an object grants the product
// of its lists.
func (d AuthorizationDetail) Covers(location, action string) bool {
	if len(d.Actions) > 0 && !slices.Contains(d.Actions, action) {
		return false
	}
	return len(d.Locations) == 0 || slices.ContainsFunc(d.Locations, func(l string) bool { return ResourceWithin(location, l) })
}

// DetailsCover reports whether one of details allows action at location.
func DetailsCover(details []AuthorizationDetail, location, action string) bool {
	return slices.ContainsFunc(details, func(d AuthorizationDetail) bool { return d.Covers(location, action) })
}

// ResourceWithin reports whether resource r is w or a path beneath it
// (https://api.example.com/repos/acme is within https://api.example.com).
// Paths are compared whole segment by segment, and a path with a dot
// segment ("..", or "%2e%2e" encoded) is within nothing but itself, so
// .../acme/../../admin never passes for a path beneath .../acme.
func ResourceWithin(r, w string) bool {
	if r == w {
		return true
	}
	ru, err1 := url.Parse(r)
	wu, err2 := url.Parse(w)
	if err1 != nil || err2 != nil || ru.Scheme != wu.Scheme || ru.Host != wu.Host ||
		ru.RawQuery != "" || ru.Fragment != "" || hasDotSegment(ru.Path) || hasDotSegment(wu.Path) {
		return false
	}
	base := strings.TrimSuffix(wu.Path, "/")
	return strings.HasPrefix(ru.Path, base+"/")
}

// hasDotSegment reports whether a (decoded) path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
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
