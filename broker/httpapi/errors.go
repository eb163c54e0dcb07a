package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/writhq/writ/broker"
)

// endpoint names the endpoint an error is answered at: the same domain
// error gets a different status at the backchannel endpoint (CIBA §13)
// than at the token endpoint (RFC 6749 §5.2, CIBA §11).
type endpoint int

const (
	atBackchannel endpoint = iota
	atToken
	atIntrospect
	atRevoke
)

// OAuth error codes writ answers with that broker has no Reason constant for.
const (
	errInvalidClient        = "invalid_client"
	errUnsupportedGrantType = "unsupported_grant_type"
	errServerError          = "server_error"
	errInvalidRequest       = "invalid_request"
	errUnavailable          = "temporarily_unavailable"
)

// storeRetryAfter is the Retry-After of a call refused because the store
// cannot write: long enough not to hammer a full disk, short enough that
// an agent notices space coming back.
const storeRetryAfter = 5 * time.Second

// oauthError is an error on its way to the wire: the RFC 6749 §5.2 body
// and the HTTP status.
type oauthError struct {
	Status      int
	Code        string
	Description string
	// RetryAfter, when set, becomes a Retry-After header (429, 503).
	RetryAfter time.Duration
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// errorStatus is the one table from protocol error to HTTP status. Each row
// gives the status at the backchannel endpoint and at the others (token,
// introspection, revocation), where every OAuth error but invalid_client
// is a 400 (RFC 6749 §5.2, CIBA §11, RFC 7009 §2.2.1).
var errorStatus = map[string]struct{ backchannel, other int }{
	broker.ReasonAuthorizationPending: {400, 400},
	broker.ReasonSlowDown:             {429, 400}, // throttled submissions; polling too fast
	broker.ReasonExpiredToken:         {400, 400},
	broker.ReasonAccessDenied:         {403, 400}, // CIBA §13: 403 at the backchannel endpoint
	broker.ReasonInvalidGrant:         {400, 400},
	broker.ReasonInvalidScope:         {400, 400},
	broker.ReasonInvalidTarget:        {400, 400},
	broker.ReasonInvalidDetails:       {400, 400},
	broker.ReasonUnknownUserID:        {400, 400},
	broker.ReasonInvalidBinding:       {400, 400},
	broker.ReasonInvalidRequest:       {400, 400},
	broker.ReasonInvalidDPoPProof:     {400, 400},
	broker.ReasonUnauthorizedClient:   {400, 400},
	"use_dpop_nonce":                  {400, 400},
	errInvalidClient:                  {401, 401},
	errUnsupportedGrantType:           {400, 400},
	errServerError:                    {500, 500},
	errUnavailable:                    {503, 503}, // the store cannot write; Retry-After says when to try again
}

// codeReason is the protocol error of a domain error that carries no Reason.
var codeReason = map[string]string{
	broker.EINVALID:      broker.ReasonInvalidRequest,
	broker.ENOTFOUND:     broker.ReasonInvalidRequest,
	broker.ECONFLICT:     broker.ReasonInvalidRequest,
	broker.EUNAUTHORIZED: errInvalidClient,
	broker.EFORBIDDEN:    broker.ReasonAccessDenied,
	broker.EFROZEN:       broker.ReasonAccessDenied,
	broker.EEXPIRED:      broker.ReasonExpiredToken,
	broker.ETHROTTLED:    broker.ReasonSlowDown,
	broker.EINTERNAL:     errServerError,
	broker.EUNAVAILABLE:  errUnavailable,
}

// toOAuth maps any error to what the client is told at endpoint at. Errors
// that are not domain errors or oauthErrors become server_error with a
// generic description; the caller logs them in full.
func toOAuth(at endpoint, err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	code := broker.ErrorCode(err)
	reason := broker.ErrorReason(err)
	if reason == "" {
		reason = codeReason[code]
	}
	if code == broker.EINTERNAL {
		reason = errServerError
	}
	st, ok := errorStatus[reason]
	if !ok {
		reason, st = broker.ReasonInvalidRequest, errorStatus[broker.ReasonInvalidRequest]
	}
	out := &oauthError{Code: reason, Description: broker.ErrorMessage(err), Status: st.other}
	if at == atBackchannel {
		out.Status = st.backchannel
	}
	if code == broker.ETHROTTLED && at == atBackchannel {
		out.RetryAfter = 10 * time.Second
	}
	if code == broker.EUNAVAILABLE {
		out.RetryAfter = storeRetryAfter
	}
	return out
}

// badRequest is an invalid_request refusal.
func badRequest(format string, args ...any) *oauthError {
	return &oauthError{Status: http.StatusBadRequest, Code: errInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

// writeJSON writes v as a JSON response that no cache keeps.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error","error_description":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeOAuthError writes e as an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter/time.Second)))
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description}
	writeJSON(w, e.Status, body)
}
