package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/writhq/writ/broker"
)

// Hard caps on one task request, checked before anything costly is done
// with it (README "Limits of one request"). An operator has to read all of
// it, and a resource server has to check it; nothing legitimate comes
// near them.
const (
	MaxScopesPerRequest    = 32  // distinct names in scope
	MaxScopeLength         = 128 // bytes of one scope name
	MaxDetailsPerRequest   = maxDetails
	MaxActionsPerRequest   = 64 // summed over every detail, after de-duplication
	MaxLocationsPerRequest = 64 // summed over every detail, after de-duplication
	maxScopeParam          = MaxScopesPerRequest * (MaxScopeLength + 1)
)

// scopeError is an invalid_scope refusal.
func scopeError(format string, args ...any) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonInvalidScope, Description: fmt.Sprintf(format, args...)}
}

// parseScopeParam splits the scope parameter into distinct names, in the
// order first named. Its length is checked before it is split, and
// duplicates are dropped through a set, so the cost is linear in a bounded
// input.
func parseScopeParam(raw string) ([]string, *oauthError) {
	if len(raw) > maxScopeParam {
		return nil, scopeError("scope is longer than %d bytes; a request names at most %d scopes", maxScopeParam, MaxScopesPerRequest)
	}
	names := strings.Fields(raw)
	seen := make(map[string]struct{}, len(names))
	out := names[:0]
	for _, n := range names {
		if len(n) > MaxScopeLength {
			return nil, scopeError("scope %s is longer than %d bytes", clip(n), MaxScopeLength)
		}
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	if len(out) > MaxScopesPerRequest {
		return nil, scopeError("scope names %d scopes; a request may name at most %d", len(out), MaxScopesPerRequest)
	}
	return out, nil
}

// capDetails drops repeated actions and locations within each detail
// (through a set) and refuses a request whose details name more than the
// caps allow in total.
func capDetails(details []broker.AuthorizationDetail) *oauthError {
	actions, locations := 0, 0
	for i := range details {
		d := &details[i]
		d.Actions = dedupe(d.Actions)
		d.Locations = dedupe(d.Locations)
		d.Datatypes = dedupe(d.Datatypes)
		d.Privileges = dedupe(d.Privileges)
		actions += len(d.Actions)
		locations += len(d.Locations)
	}
	switch {
	case actions > MaxActionsPerRequest:
		return detailsError("name %d actions in all; a request may name at most %d", actions, MaxActionsPerRequest)
	case locations > MaxLocationsPerRequest:
		return detailsError("name %d locations in all; a request may name at most %d", locations, MaxLocationsPerRequest)
	}
	return nil
}

// dedupe drops repeated values, keeping the first of each, in linear time.
func dedupe(vs []string) []string {
	if len(vs) < 2 {
		return vs
	}
	seen := make(map[string]struct{}, len(vs))
	out := vs[:0]
	for _, v := range vs {
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}
