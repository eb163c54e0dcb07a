package opapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/writhq/writ/broker"
)

// Protocol errors of the operator API's authentication (RFC 6750 §3.1,
// RFC 9449 §7.1, RFC 9470 §3).
const (
	errInvalidToken     = "invalid_token"
	errInvalidRequest   = "invalid_request"
	errInsufficientAuth = "insufficient_user_authentication"
	errInvalidProof     = "invalid_dpop_proof"
	errInvalidGrant     = "invalid_grant"
	errUnsupportedGrant = "unsupported_grant_type"
	errAccessDenied     = "access_denied"
)

// codeStatus is the one table from broker error code to HTTP status at
// the operator API. The body's error is the broker code itself unless the
// error carries a protocol reason.
var codeStatus = map[string]int{
	broker.EINVALID:      http.StatusBadRequest,
	broker.ENOTFOUND:     http.StatusNotFound,
	broker.ECONFLICT:     http.StatusConflict,
	broker.EUNAUTHORIZED: http.StatusUnauthorized,
	broker.EFORBIDDEN:    http.StatusForbidden,
	broker.EFROZEN:       http.StatusConflict,
	broker.EEXPIRED:      http.StatusConflict,
	broker.ETHROTTLED:    http.StatusTooManyRequests,
	broker.EINTERNAL:     http.StatusInternalServerError,
	broker.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// StatusCode returns the HTTP status the operator API answers a broker
// error code with (the client reverses it with CodeForStatus).
func StatusCode(code string) int {
	if st, ok := codeStatus[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// authError is an authentication refusal on its way to the wire: a 401
// (or 403) with a WWW-Authenticate challenge.
type authError struct {
	status    int
	code      string // RFC 6750 / 9449 / 9470 error
	desc      string
	challenge string // extra auth-params, e.g. max_age="600"
}

func (e *authError) Error() string { return e.code + ": " + e.desc }

func unauthorized(code, desc string) *authError {
	return &authError{status: http.StatusUnauthorized, code: code, desc: desc}
}

// writeJSON writes v as a JSON response no cache keeps.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","error_description":"internal error","code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// quote escapes a string for an auth-param value (RFC 9110 §5.6.4),
// dropping controls and non-ASCII.
func quote(s string) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= ' ' && c < 0x7f:
			out = append(out, c)
		}
	}
	return string(append(out, '"'))
}

// failure is what an error becomes on the wire.
func failure(err error) (int, ErrorBody, *authError) {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.status, ErrorBody{Error: ae.code, Description: ae.desc, Code: broker.EUNAUTHORIZED}, ae
	}
	code := broker.ErrorCode(err)
	body := ErrorBody{Error: code, Description: broker.ErrorMessage(err), Code: code}
	if r := broker.ErrorReason(err); r != "" {
		body.Error = r
	}
	return StatusCode(code), body, nil
}
