package opapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/operator"
)

// TokenType is the JWT typ of an operator token. It is not at+jwt, so no
// operator token can pass for a task or client token, nor the other way
// round (RFC 8725 §3.11).
const TokenType = "writ-op+jwt"

// DefaultTokenLifetime bounds an operator token; it never outlives the ID
// token it was exchanged for.
const DefaultTokenLifetime = 10 * time.Minute

// maxTokenBytes bounds a presented token or ID token.
const maxTokenBytes = 16 << 10

var tokenAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// IDTokenVerifier verifies an operator's ID token from the configured
// provider: *operator.Client is one.
type IDTokenVerifier interface {
	VerifyIDToken(ctx context.Context, raw string) (*operator.Session, error)
}

// opClaims are the claims of an operator token.
type opClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"` // the operator's "iss|sub"
	Audience string          `json:"aud"`
	IssuedAt int64           `json:"iat"`
	Expiry   int64           `json:"exp"`
	JTI      string          `json:"jti"`
	CNF      cnf             `json:"cnf"`
	Operator broker.Operator `json:"op"`
	// Group is the approver group the ID token proved; it must still be
	// the configured one on every call.
	Group string `json:"grp"`
}

type cnf struct {
	JKT string `json:"jkt"`
}

// audience is the aud of every operator token: the operator API itself.
func (s *Server) audience() string { return s.issuer + "/v1" }

// exchange is POST /v1/token: an RFC 8693 token exchange of the operator's
// ID token for an operator token bound to the DPoP key of the proof.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, desc string) {
		writeJSON(w, status, ErrorBody{Error: code, Description: desc, Code: broker.EUNAUTHORIZED})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, errInvalidRequest, "the body is not a form of at most 64 KiB")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != GrantTypeTokenExchange:
		fail(http.StatusBadRequest, errUnsupportedGrant, "grant_type must be "+GrantTypeTokenExchange)
		return
	case f.Get("subject_token_type") != TokenTypeIDToken:
		fail(http.StatusBadRequest, errInvalidRequest, "subject_token_type must be "+TokenTypeIDToken+": present the operator's ID token")
		return
	case f.Get("subject_token") == "" || len(f.Get("subject_token")) > maxTokenBytes:
		fail(http.StatusBadRequest, errInvalidRequest, "subject_token is missing or too large")
		return
	case f.Get("requested_token_type") != "" && f.Get("requested_token_type") != TokenTypeAccessToken:
		fail(http.StatusBadRequest, errInvalidRequest, "requested_token_type must be "+TokenTypeAccessToken)
		return
	case f.Has("actor_token"):
		fail(http.StatusBadRequest, errInvalidRequest, "delegation (actor_token) is not supported: operators act as themselves")
		return
	}
	proof, err := s.proofs.VerifyRequest(r, s.issuer+r.URL.Path, "")
	if err != nil {
		fail(http.StatusBadRequest, errInvalidProof, "the operator token is bound to a DPoP key: "+err.Error())
		return
	}
	sess, err := s.opts.Verifier.VerifyIDToken(r.Context(), f.Get("subject_token"))
	if err != nil {
		var unreachable *operator.UnreachableError
		var notApprover *operator.NotApproverError
		switch {
		case errors.As(err, &unreachable):
			s.log.Warn("operator token exchange: identity provider unreachable", "err", err)
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "temporarily_unavailable", Code: broker.EUNAVAILABLE,
				Description: "the identity provider " + unreachable.Issuer + " cannot be reached to verify the ID token; try again"})
		case errors.As(err, &notApprover):
			s.log.Info("operator token exchange refused", "reason", "not an approver", "operator", notApprover.Operator.ID())
			writeJSON(w, http.StatusForbidden, ErrorBody{Error: errAccessDenied, Description: err.Error(), Code: broker.EFORBIDDEN})
		default:
			s.log.Info("operator token exchange refused", "err", err)
			fail(http.StatusBadRequest, errInvalidRequest, "the ID token is not acceptable: "+err.Error())
		}
		return
	}
	now := s.now()
	exp := now.Add(s.opts.TokenLifetime)
	if sess.Expiry.Before(exp) {
		exp = sess.Expiry
	}
	if !exp.After(now) {
		fail(http.StatusBadRequest, errInvalidRequest, "the ID token has expired: sign in again")
		return
	}
	c := opClaims{
		Issuer: s.issuer, Subject: sess.Operator.ID(), Audience: s.audience(),
		IssuedAt: now.Unix(), Expiry: exp.Unix(), JTI: randomID(), CNF: cnf{JKT: proof.JKT},
		Operator: sess.Operator, Group: s.opts.ApproverGroup,
	}
	raw, err := s.svc.Sign(TokenType, c)
	if err != nil {
		s.log.Error("sign operator token", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: broker.EINTERNAL, Description: "internal error", Code: broker.EINTERNAL})
		return
	}
	s.log.Info("operator token issued", "operator", sess.Operator.ID(), "jti", c.JTI, "expires", exp.UTC())
	writeJSON(w, http.StatusOK, TokenResponse{AccessToken: raw, IssuedTokenType: TokenTypeAccessToken, TokenType: "DPoP",
		ExpiresIn: int64(exp.Sub(now).Round(time.Second) / time.Second), Operator: sess.Operator})
}

// caller is an authenticated operator API call.
type caller struct {
	op     broker.Operator
	claims *opClaims
}

// authenticate checks the operator token and its DPoP proof on a call.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	authz := r.Header.Values("Authorization")
	if len(authz) == 0 {
		return nil, &authError{status: http.StatusUnauthorized, desc: "the operator API needs an operator token: sign in (writ login) and present it with a DPoP proof"}
	}
	if len(authz) > 1 {
		return nil, unauthorized(errInvalidRequest, "more than one Authorization header")
	}
	scheme, raw, _ := strings.Cut(authz[0], " ")
	if !strings.EqualFold(scheme, "DPoP") {
		return nil, unauthorized(errInvalidToken, "operator tokens are DPoP-bound: send Authorization: DPoP <token> with a DPoP proof, not "+clip(scheme))
	}
	c, err := s.verifyToken(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	proof, err := s.proofs.VerifyRequest(r, s.issuer+r.URL.Path, strings.TrimSpace(raw))
	if err != nil {
		var pe *dpop.Error
		if errors.As(err, &pe) {
			return nil, unauthorized(pe.Code(), pe.Msg)
		}
		return nil, unauthorized(errInvalidProof, err.Error())
	}
	if proof.JKT != c.CNF.JKT {
		return nil, unauthorized(errInvalidToken, "the operator token is bound to another key than the DPoP proof's")
	}
	return &caller{op: c.Operator, claims: c}, nil
}

// verifyToken checks an operator token: signature by one of the issuer's
// keys, typ, iss, aud, exp, and that the approver group and the identity
// provider it proved are still the configured ones.
func (s *Server) verifyToken(raw string) (*opClaims, error) {
	bad := func(format string, args ...any) (*opClaims, error) {
		return nil, unauthorized(errInvalidToken, fmt.Sprintf(format, args...))
	}
	if raw == "" || len(raw) > maxTokenBytes || strings.Count(raw, ".") != 2 {
		return bad("the operator token is not a compact JWT")
	}
	jws, err := jose.ParseSignedCompact(raw, tokenAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the operator token is not a signed JWT")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != TokenType {
		return bad("the token's typ is %q, not %s: present an operator token from %s, never an ID token or a task token", clip(typ), TokenType, PathToken)
	}
	var key *jose.JSONWebKey
	for _, k := range s.svc.JWKS().Keys {
		if k.KeyID == h.KeyID {
			key = &k
			break
		}
	}
	if key == nil {
		return bad("the operator token is signed by an unknown key")
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return bad("the operator token's alg does not match its key")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return bad("the operator token's signature does not verify")
	}
	var c opClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the operator token's claims are malformed")
	}
	now := s.now().Unix()
	switch {
	case c.Issuer != s.issuer:
		return bad("the operator token was issued by %q, not this writ", clip(c.Issuer))
	case c.Audience != s.audience():
		return bad("the operator token's audience is %q, not %s", clip(c.Audience), s.audience())
	case now >= c.Expiry:
		return bad("the operator token expired at %s: exchange the ID token again", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case c.CNF.JKT == "":
		return bad("the operator token is not bound to a key")
	case c.Group != s.opts.ApproverGroup:
		return bad("the operator token proved group %q; approvers are now %q: sign in again", clip(c.Group), s.opts.ApproverGroup)
	case s.opts.OIDCIssuer != "" && c.Operator.Issuer != s.opts.OIDCIssuer:
		return bad("the operator signed in at %q, not the configured provider", clip(c.Operator.Issuer))
	case c.Operator.Subject == "" || c.Subject != c.Operator.ID():
		return bad("the operator token's claims are malformed")
	}
	return &c, nil
}

// requireFresh refuses a grave action when the operator's last
// authentication at the provider is older than the fresh_auth window
// (RFC 9470: the client signs in again with max_age and retries).
func (s *Server) requireFresh(c *caller, what string) error {
	win := s.opts.FreshAuth
	if win <= 0 {
		return nil
	}
	at := c.op.AuthTime
	if !at.IsZero() && s.now().Sub(at) <= win {
		return nil
	}
	age := "unknown (the ID token has no auth_time)"
	if !at.IsZero() {
		age = humanDuration(s.now().Sub(at)) + " ago"
	}
	return &authError{status: http.StatusUnauthorized, code: errInsufficientAuth,
		desc:      fmt.Sprintf("%s needs a sign-in at most %s old; yours was %s: sign in again (writ login --fresh)", what, humanDuration(win), age),
		challenge: fmt.Sprintf(`max_age="%d"`, int64(win/time.Second))}
}

// challenge writes the WWW-Authenticate header of a refusal.
func (s *Server) challenge(w http.ResponseWriter, ae *authError) {
	v := "DPoP"
	var params []string
	if ae.code != "" {
		params = append(params, "error="+quote(ae.code))
		if ae.desc != "" {
			params = append(params, "error_description="+quote(ae.desc))
		}
	}
	if ae.challenge != "" {
		params = append(params, ae.challenge)
	}
	params = append(params, `algs="`+strings.Join(s.proofs.Algorithms(), " ")+`"`)
	w.Header().Set("WWW-Authenticate", v+" "+strings.Join(params, ", "))
}

// humanDuration reads as a person writes it: 45s, 10m, 3h, 1h30m.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour && d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// clip shortens caller-supplied text quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
