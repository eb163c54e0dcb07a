package operator

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/writhq/writ/broker"
)

// Outcomes of a sign-in that the console shows as their own screens. They are
// domain errors, so broker.ErrorCode and broker.ErrorMessage work on them.
var (
	// ErrDeviceCodeExpired: nobody entered the code before it expired.
	ErrDeviceCodeExpired = &broker.Error{Code: broker.EEXPIRED, Message: "the sign-in code expired before sign-in finished"}
	// ErrAccessDenied: the person (or the provider) refused the sign-in.
	ErrAccessDenied = &broker.Error{Code: broker.EFORBIDDEN, Message: "sign-in was denied at the identity provider"}
	// ErrSessionEnded: the session expired and could not be refreshed.
	ErrSessionEnded = &broker.Error{Code: broker.EUNAUTHORIZED, Message: "the operator session has ended; sign in again"}
	// ErrNoSession: there is no remembered session to resume.
	ErrNoSession = &broker.Error{Code: broker.ENOTFOUND, Message: "no remembered operator session"}
)

// UnreachableError says the identity provider could not be reached: approvals
// wait, revocation still works.
type UnreachableError struct {
	Issuer string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("identity provider %s is unreachable: %v", e.Issuer, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// VerifyError says an ID token failed verification: wrong issuer or audience,
// expired, bad signature, nonce or at_hash mismatch.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("ID token rejected: %s: %v", e.Reason, e.Err)
	}
	return "ID token rejected: " + e.Reason
}

// Unwrap gives the cause and the domain code EUNAUTHORIZED.
func (e *VerifyError) Unwrap() []error {
	errs := []error{&broker.Error{Code: broker.EUNAUTHORIZED, Message: e.Error()}}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// NotApproverError says a verified person is not in the approver group, and
// exactly what was looked for and what the token had.
type NotApproverError struct {
	// Operator is who signed in.
	Operator broker.Operator
	// Claim is the configured claim name or dotted path, Group the group it
	// must contain.
	Claim, Group string
	// Found says whether the claim was in the token; Value is its JSON.
	Found bool
	Value string
	// ByReference: the provider left the groups out of the token and pointed
	// to them instead (_claim_names, e.g. Entra ID's group overage).
	ByReference bool
}

func (e *NotApproverError) Error() string {
	var b strings.Builder
	b.WriteString("not an approver: ")
	if e.Found {
		fmt.Fprintf(&b, "claim %q has %s, needs %q", e.Claim, e.Value, e.Group)
	} else {
		fmt.Fprintf(&b, "the ID token has no claim %q, needs %q", e.Claim, e.Group)
	}
	if e.ByReference {
		b.WriteString(" (the provider sent the groups by reference, not in the token: configure it to emit them, e.g. as group names or app roles)")
	}
	return b.String()
}

// Unwrap gives the domain code EFORBIDDEN.
func (e *NotApproverError) Unwrap() error {
	return &broker.Error{Code: broker.EFORBIDDEN, Message: e.Error()}
}

// claimJSON renders a claim value for an error message, shortened so a list
// of hundreds of group ids stays readable.
func claimJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
