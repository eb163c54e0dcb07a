package agent

import "fmt"

// Error is an OAuth error answered by writ (RFC 6749 §5.2): a code for
// machines, a description for people, and the HTTP status.
type Error struct {
	Code        string
	Description string
	Status      int
}

func (e *Error) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return e.Code + ": " + e.Description
}

// Is matches the sentinel errors by code: errors.Is(err, agent.ErrDenied).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Description == "" && t.Status == 0 && t.Code == e.Code
}

// Sentinels for the outcomes an agent handles, to use with errors.Is.
var (
	// ErrPending: the operator has not decided yet (authorization_pending).
	ErrPending = &Error{Code: "authorization_pending"}
	// ErrSlowDown: polling too fast; wait 5 s longer from now on.
	ErrSlowDown = &Error{Code: "slow_down"}
	// ErrDenied: the operator denied the task; the Description has the reason.
	ErrDenied = &Error{Code: "access_denied"}
	// ErrExpired: nobody decided before the request's deadline.
	ErrExpired = &Error{Code: "expired_token"}
	// ErrInvalidGrant: the task is unknown, another agent's, or already redeemed.
	ErrInvalidGrant = &Error{Code: "invalid_grant"}
	// ErrInvalidClient: writ did not accept the agent's credentials.
	ErrInvalidClient = &Error{Code: "invalid_client"}
	// ErrInvalidDetails: the authorization details were refused.
	ErrInvalidDetails = &Error{Code: "invalid_authorization_details"}
	// ErrInvalidScope: a scope is unknown or beyond the agent's ceiling.
	ErrInvalidScope = &Error{Code: "invalid_scope"}
	// ErrInvalidDPoPProof: the DPoP proof was refused.
	ErrInvalidDPoPProof = &Error{Code: "invalid_dpop_proof"}
)
