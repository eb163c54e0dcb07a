package guard_test

import (
	"testing"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/wire"
)

// TestPrincipalAllows: an action needs the scope and, when a detail names
// the action, a detail covering it at the location.
func TestPrincipalAllows(t *testing.T) {
	const res = "https://git.example"
	detail := wire.AuthorizationDetail{Type: wire.TaskDetailType, Actions: []string{"contents:write", "pulls:write"},
		Locations: []string{res + "/repos/acme/web"}}
	for _, tt := range []struct {
		name     string
		p        guard.Principal
		loc, act string
		want     bool
	}{
		{"scope only, no details", guard.Principal{Scopes: []string{"contents:read"}}, res + "/anything", "contents:read", true},
		{"no scope, no details", guard.Principal{Scopes: []string{"contents:read"}}, res, "contents:write", false},
		{"scope and covering detail", guard.Principal{Scopes: []string{"contents:write"}, Details: []wire.AuthorizationDetail{detail}},
			res + "/repos/acme/web/branches", "contents:write", true},
		{"detail names the action but the scope lacks it", guard.Principal{Scopes: []string{"contents:write"}, Details: []wire.AuthorizationDetail{detail}},
			res + "/repos/acme/web", "pulls:write", false},
		{"scope but the detail confines it elsewhere", guard.Principal{Scopes: []string{"contents:write"}, Details: []wire.AuthorizationDetail{detail}},
			res + "/repos/acme/api", "contents:write", false},
		// A detail qualifies the actions it names; an action no detail
		// names holds at the whole resource (wire.AllowsAt).
		{"scope that no detail names", guard.Principal{Scopes: []string{"contents:read", "contents:write"}, Details: []wire.AuthorizationDetail{detail}},
			res + "/repos/elsewhere", "contents:read", true},
		{"dot segments escape nothing", guard.Principal{Scopes: []string{"contents:write"}, Details: []wire.AuthorizationDetail{detail}},
			res + "/repos/acme/web/../api", "contents:write", false},
		{"a detail without locations covers every location", guard.Principal{Scopes: []string{"pulls:write"},
			Details: []wire.AuthorizationDetail{{Type: wire.TaskDetailType, Actions: []string{"pulls:write"}}}}, res + "/x", "pulls:write", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Allows(tt.loc, tt.act); got != tt.want {
				t.Fatalf("Allows(%s, %s) = %v, want %v", tt.loc, tt.act, got, tt.want)
			}
		})
	}
}
