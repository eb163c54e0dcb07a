package httpapi

import (
	"net/http"
	"strings"

	"github.com/writhq/writ/broker"
)

// maxTokenBytes bounds a token presented for introspection or revocation;
// writ's tokens are well under 2 KiB.
const maxTokenBytes = 16 << 10

// IntrospectionResponse is RFC 7662 §2.2's answer. For an inactive token
// only Active is sent. TokenType is DPoP for a DPoP-bound token, whose
// thumbprint is in Cnf (RFC 9449 §6.2).
type IntrospectionResponse struct {
	Active               bool                         `json:"active"`
	Scope                string                       `json:"scope,omitempty"`
	ClientID             string                       `json:"client_id,omitempty"`
	TokenType            string                       `json:"token_type,omitempty"`
	Exp                  int64                        `json:"exp,omitempty"`
	Iat                  int64                        `json:"iat,omitempty"`
	Nbf                  int64                        `json:"nbf,omitempty"`
	Sub                  string                       `json:"sub,omitempty"`
	Aud                  string                       `json:"aud,omitempty"`
	Iss                  string                       `json:"iss,omitempty"`
	JTI                  string                       `json:"jti,omitempty"`
	Cnf                  *broker.Confirmation         `json:"cnf,omitempty"`
	SID                  string                       `json:"sid,omitempty"`
	AuthorizationDetails []broker.AuthorizationDetail `json:"authorization_details,omitempty"`
	Writ                 *broker.WritClaims           `json:"writ,omitempty"`
}

// serveIntrospect answers whether a token is active (RFC 7662), for an
// authenticated resource server, and records the call as a use of the
// token's grant. A token for an audience the caller does not serve is
// inactive to it, as are expired, revoked, frozen-epoch, foreign and
// malformed tokens: {"active":false} and nothing more.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	f, ferr := readForm(w, r, s.opts.MaxBodyBytes)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	client, aerr := s.authenticateIntrospector(r, f)
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	if client.Resource == nil {
		// Agents hold tokens; they do not judge them. Letting them ask
		// would also count their questions as uses of their grants.
		writeOAuthError(w, &oauthError{Status: http.StatusForbidden, Code: broker.ReasonUnauthorizedClient,
			Description: "client " + client.ID + " is an agent; introspection is for resource servers"})
		return
	}
	raw := f.get("token")
	if raw == "" {
		writeOAuthError(w, badRequest("token is required"))
		return
	}
	inactive := IntrospectionResponse{Active: false}
	if len(raw) > maxTokenBytes {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	// The audience is checked before a use is recorded: a resource server
	// asking about another's token learns nothing and counts for nothing.
	in, err := s.svc.IntrospectFor(r.Context(), raw, client.Resource.mayIntrospect)
	if err != nil {
		s.fail(w, r, atIntrospect, err)
		return
	}
	if !in.Active {
		if in.JTI != "" {
			s.log.Debug("introspection: inactive token", "client", client.ID, "jti", in.JTI, "why", in.Why)
		}
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	c := in.Claims
	resp := IntrospectionResponse{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer",
		Exp: c.Expiry, Iat: c.IssuedAt, Nbf: c.NotBefore, Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer,
		JTI: c.JTI, Cnf: c.Cnf, SID: c.SID, AuthorizationDetails: c.Details, Writ: &c.Writ,
	}
	if c.Cnf != nil && c.Cnf.JKT != "" {
		resp.TokenType = "DPoP"
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateIntrospector authenticates the caller of the introspection
// endpoint: a client assertion in the form, as everywhere, or (RFC 7662
// §2.1) a client-credentials access token with the introspect scope as a
// Bearer credential. The token is verified once and cached, so a busy
// resource server does not pay a signature check per call.
func (s *Server) authenticateIntrospector(r *http.Request, f form) (*Client, *oauthError) {
	raw, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer || !IsAccessToken(raw) {
		return s.authenticate(r.Context(), r, f, s.url(pathIntrospect))
	}
	if f.has("client_assertion") || f.has("client_assertion_type") || f.has("client_secret") {
		return nil, badRequest("use one way to authenticate: a Bearer access token or a client assertion, not both")
	}
	c, err := s.AuthenticateClientToken(raw, []string{broker.ScopeIntrospect})
	if err != nil {
		s.metrics.clientAuthFailures.WithLabelValues(errInvalidClient).Inc()
		status := http.StatusUnauthorized
		if broker.ErrorCode(err) == broker.EFORBIDDEN {
			status = http.StatusForbidden
		}
		code := broker.ErrorReason(err) // invalid_token or insufficient_scope (RFC 6750 §3.1)
		if code == "" {
			code = broker.ReasonInvalidToken
		}
		return nil, &oauthError{Status: status, Code: code, Description: broker.ErrorMessage(err)}
	}
	return c, nil
}
