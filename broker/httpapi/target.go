package httpapi

import (
	"context"
	"net/http"
)

// checkTarget answers invalid_target (RFC 8707 §2) when a token request
// names a resource other than the one its task's grant is for: a writ
// token has exactly one audience, fixed when the operator decided, and a
// client asking for another must not be handed one for the first.
// It is checked before the task is redeemed, so a refused request leaves
// the token to collect. A task that is not the client's is left to Redeem,
// which answers invalid_grant without saying whether it exists.
func (s *Server) checkTarget(ctx context.Context, agentID, requestID, resource string) *oauthError {
	if resource == "" {
		return nil
	}
	req, err := s.svc.Request(ctx, requestID)
	if err != nil || req.AgentID != agentID {
		return nil
	}
	want := req.Terms.Resource
	if req.GrantID != "" {
		if g, err := s.svc.Grant(ctx, req.GrantID); err == nil {
			want = g.Terms.Resource
		}
	}
	if resource == want {
		return nil
	}
	return &oauthError{Status: http.StatusBadRequest, Code: "invalid_target",
		Description: "resource " + clip(resource) + " is not the resource of this task (" + want + "); a writ token has one audience"}
}
