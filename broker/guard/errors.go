package guard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/writhq/writ/wire"
)

// Reasons a request is refused. They are stable: metrics are labelled with
// them and callers may switch on them.
const (
	ReasonNoToken         = "no_token"             // no Authorization header for Bearer or DPoP
	ReasonBadRequest      = "bad_request"          // several Authorization headers, an empty token
	ReasonMalformed       = "malformed_token"      // not a compact JWS of JSON
	ReasonType            = "typ"                  // typ is not at+jwt
	ReasonAlg             = "alg"                  // alg not on the allow-list
	ReasonUnknownKey      = "unknown_key"          // kid not in writ's JWKS, even after a refetch
	ReasonSignature       = "signature"            // the signature does not verify
	ReasonIssuer          = "issuer"               // iss is not writ's
	ReasonAudience        = "audience"             // aud is not this resource
	ReasonClaims          = "claims"               // a required claim is missing or malformed
	ReasonExpired         = "expired"              // past exp (plus leeway), or past a narrowed exp
	ReasonNotYetValid     = "not_yet_valid"        // before nbf or iat (minus leeway)
	ReasonRevoked         = "revoked"              // the revocation feed says so
	ReasonBoundAsBearer   = "dpop_bound_as_bearer" // a DPoP-bound token under the Bearer scheme
	ReasonNotBound        = "not_dpop_bound"       // an unbound token under the DPoP scheme
	ReasonDPoPRequired    = "dpop_required"        // an unbound token where RequireDPoP is set
	ReasonDPoPProof       = "dpop_proof"           // the DPoP proof is missing or invalid
	ReasonKeyMismatch     = "dpop_key_mismatch"    // the proof's key is not the token's cnf.jkt
	ReasonScope           = "insufficient_scope"   // the token does not cover the call
	ReasonFeedUnavailable = "feed_unavailable"     // revocation status unknown: the guard fails closed
	ReasonInactive        = "inactive"             // introspection says the token is not active
	ReasonKeys            = "keys_unavailable"     // writ's JWKS could not be fetched
	ReasonThrottled       = "throttled"            // the agent is over its request limit or proof quota: 429
)

// Error is why a request was refused, with what an RFC 6750 / RFC 9449
// answer needs. Descriptions never contain the token.
type Error struct {
	Status      int    // 400, 401, 403, 429 or 503
	Code        string // OAuth error code; "" when the request had no credentials
	Reason      string // one of the Reason constants
	Description string
	// DPoP says the challenge carrying the error uses the DPoP scheme.
	DPoP bool
	// Scope lists the scopes needed and not held, for insufficient_scope.
	Scope string
	// Details are the authorization details that would cover the refused
	// call (insufficient_scope): in the challenge as writ's
	// authorization_details parameter, and in the body.
	Details []wire.AuthorizationDetail
	// RetryAfter is set when the guard fails closed for a while.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "guard: " + e.Reason
	}
	return "guard: " + e.Reason + ": " + e.Description
}

func refuse(status int, code, reason, desc string) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Description: desc}
}

func invalidToken(reason, desc string) *Error {
	return refuse(http.StatusUnauthorized, "invalid_token", reason, desc)
}

// WriteError answers a refused request: the status, RFC 6750 §3
// WWW-Authenticate challenges (Bearer, and DPoP with algs, RFC 9449 §7.1),
// and a JSON body with error and error_description.
func (g *Guard) WriteError(w http.ResponseWriter, err error) {
	e, ok := err.(*Error)
	if !ok {
		e = refuse(http.StatusInternalServerError, "server_error", "internal", "internal error")
	}
	h := w.Header()
	realm := `realm="` + quoteValue(g.realm) + `"`
	challenge := func(scheme string, withError bool) string {
		var b strings.Builder
		b.WriteString(scheme)
		b.WriteString(" ")
		b.WriteString(realm)
		if g.cfg.ResourceMetadataURL != "" {
			b.WriteString(`, resource_metadata="` + quoteValue(g.cfg.ResourceMetadataURL) + `"`)
		}
		if withError && e.Code != "" {
			b.WriteString(`, error="` + e.Code + `"`)
			if e.Description != "" {
				b.WriteString(`, error_description="` + quoteValue(e.Description) + `"`)
			}
			if e.Scope != "" {
				b.WriteString(`, scope="` + quoteValue(e.Scope) + `"`)
			}
			if len(e.Details) > 0 {
				// base64url needs no escaping and may exceed quoteValue's cap.
				b.WriteString(`, authorization_details="` + wire.EncodeDetails(e.Details) + `"`)
			}
		}
		if scheme == "DPoP" {
			b.WriteString(`, algs="` + g.dpopAlgs + `"`)
		}
		return b.String()
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		if !g.cfg.RequireDPoP {
			h.Add("WWW-Authenticate", challenge("Bearer", !e.DPoP))
		}
		h.Add("WWW-Authenticate", challenge("DPoP", e.DPoP || g.cfg.RequireDPoP))
	case http.StatusServiceUnavailable:
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	code := e.Code
	if code == "" {
		code = "invalid_request" // the body still says something; the challenge carries no code (RFC 6750 §3.1)
		if e.Reason == ReasonNoToken {
			code = "unauthorized"
		}
	}
	fields := map[string]any{"error": code, "error_description": e.Description}
	if e.Scope != "" {
		fields["scope"] = e.Scope
	}
	if len(e.Details) > 0 {
		fields["authorization_details"] = e.Details
	}
	body, _ := json.Marshal(fields)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// quoteValue makes s safe inside a quoted-string of a challenge: printable
// ASCII only, quotes and backslashes escaped.
func quoteValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 300; i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= ' ' && c < 0x7f:
			b.WriteByte(c)
		}
	}
	return b.String()
}
