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
	EINTERNAL     = "internal"     // a bug or an I/O failure; details are logged, not shown
)

// Error is the domain error: a code for machines, a message for people.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

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
