package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
)

// TokenResponse is the token endpoint's success response (RFC 6749 §5.1,
// CIBA §10.1.1, RFC 9449 §5, RFC 9396 §7). AuthorizationDetails are the
// details as granted, so an agent sees exactly what an operator narrowed.
type TokenResponse struct {
	AccessToken          string                       `json:"access_token"`
	TokenType            string                       `json:"token_type"`
	ExpiresIn            int64                        `json:"expires_in"`
	Scope                string                       `json:"scope,omitempty"`
	AuthorizationDetails []broker.AuthorizationDetail `json:"authorization_details,omitempty"`
	IDToken              string                       `json:"id_token,omitempty"`
}

// serveToken redeems an approved task request (CIBA Core §10.1) for a
// token, bound to the DPoP key that proved possession on this request; or
// gives a resource server a token for the revocation feed (client
// credentials).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	f, ferr := readForm(w, r, s.opts.MaxBodyBytes)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	// The grant type is checked before authentication, as it decides
	// which parameters the request must have.
	switch gt := f.get("grant_type"); gt {
	case CIBAGrantType:
	case ClientCredentialsGrantType:
		s.serveClientCredentials(w, r, f)
		return
	case "":
		writeOAuthError(w, badRequest("grant_type is required (%s, or %s for resource servers)", CIBAGrantType, ClientCredentialsGrantType))
		return
	default:
		writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: errUnsupportedGrantType,
			Description: "grant_type " + clip(gt) + " is not supported; writ issues tokens for approved tasks (" + CIBAGrantType +
				") and feed tokens for resource servers (" + ClientCredentialsGrantType + ")"})
		return
	}
	client, aerr := s.authenticate(r.Context(), r, f, s.url(pathToken))
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	if client.Agent == nil {
		writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: broker.ReasonUnauthorizedClient,
			Description: "client " + client.ID + " is a resource server; only agents redeem tasks"})
		return
	}
	id := f.get("auth_req_id")
	if id == "" {
		writeOAuthError(w, badRequest("auth_req_id is required"))
		return
	}
	if oe := s.checkTarget(r.Context(), client.ID, id, f.get("resource")); oe != nil {
		writeOAuthError(w, oe)
		return
	}
	// Every poll needs a fresh proof (RFC 9449 §4.3), checked against the
	// token endpoint's URL as configured, not as the request says.
	jkt := ""
	if len(r.Header.Values("DPoP")) > 0 || s.requireDPoP {
		proof, err := s.proofs.VerifyRequestFor(r, s.url(pathToken), "", client.ID)
		if err != nil {
			s.refuseProof(w, r, err)
			return
		}
		jkt = proof.JKT
	}
	tok, err := s.svc.Redeem(r.Context(), client.ID, id, jkt)
	if err != nil {
		s.fail(w, r, atToken, err)
		return
	}
	s.metrics.tokensIssued.WithLabelValues(tok.TokenType).Inc()
	s.log.Info("token issued", "agent", client.ID, "jti", tok.JTI, "token", tokenRef(tok.AccessToken), "type", tok.TokenType)
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken:          tok.AccessToken,
		TokenType:            tok.TokenType,
		ExpiresIn:            max(int64(tok.ExpiresIn/time.Second), 1),
		Scope:                tok.Scope,
		AuthorizationDetails: tok.Details,
		IDToken:              tok.IDToken,
	})
}

// refuseProof answers a refused DPoP proof: 400 invalid_dpop_proof (or
// use_dpop_nonce) at the authorization server (RFC 9449 §5, §8). A proof
// the server itself could not check (a misconfiguration) is a 500.
func (s *Server) refuseProof(w http.ResponseWriter, r *http.Request, err error) {
	var e *dpop.Error
	if !errors.As(err, &e) {
		s.log.Error("DPoP proof could not be checked", "err", err)
		writeOAuthError(w, &oauthError{Status: http.StatusInternalServerError, Code: errServerError, Description: "internal error"})
		return
	}
	s.metrics.dpopFailures.WithLabelValues(e.Reason).Inc()
	if e.Reason == dpop.ReasonReplayQuota {
		writeOAuthError(w, slowDown(s.proofs.ReplayRetryAfter(), "%s", e.Msg))
		return
	}
	desc := e.Msg
	if e.Reason == dpop.ReasonMissing && s.requireDPoP {
		desc = "this issuer mints only DPoP-bound tokens: send a DPoP proof (RFC 9449) with the token request"
	}
	writeOAuthError(w, &oauthError{Status: http.StatusBadRequest, Code: e.Code(), Description: desc})
}
