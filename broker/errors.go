package broker

import (
	"errors"
	"fmt"
)

// Error codes. Every error the domain returns to a caller carries one of
// these; the HTTP layer maps them to status codes and OAuth error strings in
// one table, and the console shows the message.
const (
	EINVALID      = "invalid"      // the caller sent something malformed or out of bounds
	ENOTFOUND     = "not_found"    // no such request, grant, agent or token
	ECONFLICT     = "conflict"     // the transition is illegal from the current state
	EUNAUTHORIZED = "unauthorized" // the caller is not who it claims, or not signed in
	EFORBIDDEN    = "forbidden"    // the caller is known but may not do this
	EFROZEN       = "frozen"       // the issuer is frozen: nothing is approved or minted
	EEXPIRED      = "expired"      // the request or grant has passed its deadline
	ETHROTTLED    = "throttled"    // the caller is over its rate limit
	EUNAVAILABLE  = "unavailable"  // the store cannot write right now (disk full, I/O error): nothing was done; retry later
	EINTERNAL     = "internal"     // a bug or an I/O failure; details are logged, not shown
)

// Error is the domain error: a code for machines, a message for people.
type Error struct {
	Code    string
	Message string
	// Reason is an optional protocol error for the HTTP layer when the code
	// alone is too coarse (e.g. "invalid_scope", "authorization_pending").
	Reason string
}

// WithReason returns a copy of e carrying a protocol reason.
func (e *Error) WithReason(reason string) *Error {
	c := *e
	c.Reason = reason
	return &c
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrStoreUnavailable is what a write the store could not commit (a full
// disk, a file size limit, an I/O error) is returned as, wrapped with the
// cause: nothing of it was written, and the caller may retry later. A
// revocation refused with it was not done.
var ErrStoreUnavailable = &Error{Code: EUNAVAILABLE, Message: "writ cannot write to its store right now (a full disk, an I/O error, or the server stopping); nothing was done: retry later"}

// ErrorCode returns the code of err, EINTERNAL for errors that are not
// domain errors, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of a domain error, or "internal error"
// for anything else, so internal detail never reaches a caller.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	}
	return "internal error"
}

// ErrorReason returns the protocol reason of a domain error, if any.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Protocol reasons the token and backchannel endpoints need to tell apart.
const (
	ReasonAuthorizationPending = "authorization_pending"
	ReasonSlowDown             = "slow_down"
	ReasonExpiredToken         = "expired_token"
	ReasonAccessDenied         = "access_denied"
	ReasonInvalidGrant         = "invalid_grant"
	ReasonInvalidScope         = "invalid_scope"
	ReasonInvalidTarget        = "invalid_target"
	ReasonInvalidDetails       = "invalid_authorization_details"
	ReasonUnknownUserID        = "unknown_user_id"
	ReasonInvalidBinding       = "invalid_binding_message"
	ReasonInvalidRequest       = "invalid_request"
	ReasonInvalidDPoPProof     = "invalid_dpop_proof"
	ReasonUnauthorizedClient   = "unauthorized_client"
)
