package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// ClientCredentialsGrantType is the client credentials grant (RFC 6749
// §4.4), by which resource servers get access tokens for the revocation
// feed, as standard SSF receivers do.
const ClientCredentialsGrantType = "client_credentials"

// MethodClientToken is Client.Method for a caller that presented an access
// token from the client credentials grant.
const MethodClientToken = "client_token"

// serveClientCredentials mints a feed access token for a resource server
// (RFC 6749 §4.4.2, §4.4.3): client authentication as at every endpoint,
// scope ssf.read and/or ssf.manage, no refresh token. The token is never
// sender-bound, so DPoP plays no part.
func (s *Server) serveClientCredentials(w http.ResponseWriter, r *http.Request, f form) {
	client, aerr := s.authenticate(r.Context(), r, f, s.url(pathToken))
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	if client.Resource == nil {
		writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonUnauthorizedClient,
			Description: "client " + client.ID + " is an agent; agents get task tokens through " + CIBAGrantType + " only"})
		return
	}
	if res := f.get("resource"); res != "" && res != s.svc.ClientTokenAudience() {
		writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonInvalidTarget,
			Description: "a resource server's token is for the revocation feed " + s.svc.ClientTokenAudience() + " only"})
		return
	}
	scopes, err := broker.ClientScopes(strings.Fields(f.get("scope")))
	if err != nil {
		s.fail(w, r, atToken, err)
		return
	}
	raw, exp, err := s.svc.MintClientToken(client.ID, scopes)
	if err != nil {
		s.fail(w, r, atToken, err)
		return
	}
	s.metrics.clientTokensIssued.Inc()
	s.log.Debug("client token issued", "client", client.ID, "token", tokenRef(raw), "scope", strings.Join(scopes, " "))
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: raw,
		TokenType:   "Bearer",
		ExpiresIn:   max(int64(exp.Sub(s.now())/time.Second), 1),
		Scope:       strings.Join(scopes, " "),
	})
}

// AuthenticateClientToken authenticates a resource server by an access
// token from the client credentials grant, presented as a Bearer
// credential (RFC 6750). anyOf are the scopes any one of which the call
// needs (none: any token will do). A token that does not verify, or whose
// client is no longer a configured resource server, is an EUNAUTHORIZED
// error with reason invalid_token; a valid token without the scope is
// EFORBIDDEN with reason insufficient_scope. Task tokens are refused.
func (s *Server) AuthenticateClientToken(raw string, anyOf []string) (*Client, error) {
	c, err := s.svc.VerifyClientToken(raw)
	if err != nil {
		return nil, err
	}
	return s.clientOfToken(c, anyOf)
}

// clientOfToken is AuthenticateClientToken after the token verified: the
// configured resource server it speaks for, if it has one of anyOf.
func (s *Server) clientOfToken(c *broker.ClientClaims, anyOf []string) (*Client, error) {
	rc, ok := s.resourceClient(c.ClientID)
	if !ok {
		return nil, broker.Errorf(broker.EUNAUTHORIZED, "client %q is not a configured resource server", clip(c.ClientID)).
			WithReason(broker.ReasonInvalidToken)
	}
	if len(anyOf) > 0 && !slices.ContainsFunc(anyOf, c.HasScope) {
		return nil, broker.Errorf(broker.EFORBIDDEN, "the access token's scope %q lacks %s", c.Scope, strings.Join(anyOf, " or ")).
			WithReason(broker.ReasonInsufficientScope)
	}
	return &Client{ID: rc.ID, Method: MethodClientToken, Resource: rc}, nil
}

// IsAccessToken reports whether a Bearer credential claims to be an
// access token (typ at+jwt) rather than a client assertion. It only reads
// the unverified header, to pick which check the credential gets; each
// check then verifies it in full.
func IsAccessToken(raw string) bool {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > 1024 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	return strings.EqualFold(h.Typ, "at+jwt") || strings.EqualFold(h.Typ, "application/at+jwt")
}
