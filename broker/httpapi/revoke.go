package httpapi

import (
	"net/http"

	"github.com/writhq/writ/broker"
)

// serveRevoke is RFC 7009 token revocation. An agent revoking its own
// token says its task is done: the grant completes, and the revocation
// feed tells resource servers. The answer is 200 whether or not the token
// was known, live, or the caller's (§2.2): a token of another client is
// left alone, and the caller cannot tell, so the endpoint reveals nothing.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	f, ferr := readForm(w, r, s.opts.MaxBodyBytes)
	if ferr != nil {
		writeOAuthError(w, ferr)
		return
	}
	client, aerr := s.authenticate(r.Context(), r, f, s.url(pathRevoke))
	if aerr != nil {
		writeOAuthError(w, aerr)
		return
	}
	raw := f.get("token")
	if raw == "" {
		writeOAuthError(w, badRequest("token is required"))
		return
	}
	// token_type_hint is only a hint (§2.1): writ has access tokens only.
	done := func() {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
	if len(raw) > maxTokenBytes || client.Agent == nil {
		done()
		return
	}
	claims, err := s.svc.VerifyAccessToken(raw)
	if err != nil {
		done()
		return
	}
	if claims.ClientID != client.ID {
		s.log.Warn("revocation of another client's token refused", "client", client.ID, "owner", claims.ClientID, "jti", claims.JTI)
		done()
		return
	}
	err = s.svc.Complete(r.Context(), client.ID, claims.JTI)
	switch broker.ErrorCode(err) {
	case "", broker.ENOTFOUND, broker.EFORBIDDEN:
		if err == nil {
			s.log.Info("grant completed by its agent", "agent", client.ID, "jti", claims.JTI, "grant", claims.SID)
		}
		done()
	default:
		s.fail(w, r, atRevoke, err)
	}
}
