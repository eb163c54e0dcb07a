package broker

import (
	"github.com/writhq/writ/wire"

	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"reflect"
	"strings"
	"time"
)

// The token's claims are wire types, which the SDKs read without the issuer.
type (
	// AccessClaims are the claims of writ's RFC 9068 access token.
	AccessClaims = wire.AccessClaims
	// Confirmation binds a token to a DPoP key (RFC 9449 §6.1).
	Confirmation = wire.Confirmation
	// WritClaims trace a token to its consent.
	WritClaims = wire.WritClaims
	// ApproverRef identifies the operator who approved.
	ApproverRef = wire.ApproverRef
)

// IssuedToken is the token endpoint's answer for an approved request.
type IssuedToken struct {
	AccessToken string
	TokenType   string // "DPoP" or "Bearer"
	ExpiresIn   time.Duration
	Scope       string
	Details     []AuthorizationDetail // as granted
	IDToken     string                // when openid was asked for
	JTI         string
	Grant       *Grant
}

// IntentDigest is the hex SHA-256 of an intent, as carried in tokens.
func IntentDigest(intent string) string {
	h := sha256.Sum256([]byte(intent))
	return hex.EncodeToString(h[:])
}

// Redeem is the CIBA token endpoint for agent agentID polling requestID.
// jkt is the thumbprint of the DPoP key that proved possession on this
// poll, or "" for none. Until the request is decided it returns errors
// whose Reason is authorization_pending or slow_down; then either the token
// (once) or access_denied, expired_token or invalid_grant.
func (s *Service) Redeem(ctx context.Context, agentID, requestID, jkt string) (*IssuedToken, error) {
	now := s.now().UTC()
	var dec *Decision
	var err error
	// A request still awaited (pending, or approved and not yet redeemed)
	// is answered from memory (awaiting.go); any other from the store.
	req, grant, known := s.awaitingRequest(requestID)
	if !known || req.AgentID != agentID {
		err = s.store.View(ctx, func(tx TxReader) error {
			var err error
			req, err = tx.Request(requestID)
			if err != nil || req.AgentID != agentID {
				return Errorf(EINVALID, "auth_req_id is unknown or was issued to another client").WithReason(ReasonInvalidGrant)
			}
			// The decision is read only to tell a denied agent why; a token
			// names it by the id the request carries.
			if req.State == RequestDenied && req.DecisionID != "" {
				if dec, err = tx.Decision(req.DecisionID); err != nil {
					return err
				}
			}
			grant = nil
			if req.GrantID != "" {
				grant, err = tx.Grant(req.GrantID)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	s.touchAgent(agentID, now)
	switch req.State {
	case RequestPending:
		if now.After(req.Deadline) {
			return nil, Errorf(EEXPIRED, "the request passed its review deadline").WithReason(ReasonExpiredToken)
		}
		if interval, tooSoon := s.polls.poll(req.ID, req.Interval, now); tooSoon {
			return nil, Errorf(ETHROTTLED, "polling faster than every %s", interval).WithReason(ReasonSlowDown)
		}
		return nil, Errorf(ECONFLICT, "the operator has not decided yet").WithReason(ReasonAuthorizationPending)
	case RequestExpired:
		return nil, Errorf(EEXPIRED, "the request passed its review deadline").WithReason(ReasonExpiredToken)
	case RequestDenied:
		reason := "denied"
		if dec != nil {
			reason = "denied: " + dec.Reason
		}
		return nil, Errorf(EFORBIDDEN, "%s", reason).WithReason(ReasonAccessDenied)
	case RequestCancelled:
		return nil, Errorf(EFORBIDDEN, "the request was cancelled").WithReason(ReasonAccessDenied)
	case RequestRedeemed:
		return nil, Errorf(ECONFLICT, "the token for this request was already issued").WithReason(ReasonInvalidGrant)
	}
	s.polls.forget(req.ID)
	if grant == nil || req.DecisionID == "" {
		return nil, Errorf(EINTERNAL, "approved request %s has no grant", short(req.ID))
	}
	if s.cfg.RequireDPoP && jkt == "" {
		return nil, Errorf(EINVALID, "this issuer requires a DPoP proof at the token endpoint").WithReason(ReasonInvalidDPoPProof)
	}
	if st := StatusOf(grant, s.IssuerState(), s.agentState(agentID), now); !st.Live() {
		if st.Cause.Kind == EndExpired {
			return nil, Errorf(EEXPIRED, "the grant %s", st.Why()).WithReason(ReasonExpiredToken)
		}
		return nil, Errorf(EFORBIDDEN, "the grant %s", st.Why()).WithReason(ReasonAccessDenied)
	}
	if s.IssuerState().Frozen {
		return nil, Errorf(EFROZEN, "issuance is frozen").WithReason(ReasonAccessDenied)
	}

	// The claims are signed outside the write transaction; if an operator
	// narrows the grant meanwhile, the signed claims are stale and the
	// token is minted again from the grant as it now stands.
	var raw string
	var claims *AccessClaims
	var tok *Token
	for attempt := 0; ; attempt++ {
		raw, claims, tok, err = s.mintFrom(ctx, req, grant, agentID, jkt, now)
		if !errors.Is(err, errGrantChanged) || attempt == 2 {
			break
		}
		if grant, err = s.Grant(ctx, grant.ID); err != nil {
			return nil, err
		}
	}
	if errors.Is(err, errGrantChanged) {
		// An operator is still narrowing the grant: the agent polls again.
		return nil, Errorf(ETHROTTLED, "the grant changed while its token was minted; poll again").WithReason(ReasonSlowDown)
	}
	if err != nil {
		return nil, err
	}
	out := &IssuedToken{AccessToken: raw, TokenType: "Bearer", ExpiresIn: tok.ExpiresAt.Sub(now),
		Scope: claims.Scope, Details: claims.Details, JTI: tok.JTI, Grant: grant}
	if jkt != "" {
		out.TokenType = "DPoP"
	}
	if contains(grant.Terms.Scopes, ScopeOpenID) || contains(req.Terms.Scopes, ScopeOpenID) {
		if out.IDToken, err = s.idToken(req, grant, raw, now, tok.ExpiresAt); err != nil {
			return nil, err
		}
	}
	ast := s.agentState(agentID)
	s.publish(Event{Kind: EventTokenIssued, At: now, Request: req, Grant: grant, Agent: &ast})
	return out, nil
}

// errGrantChanged says the grant's terms changed between signing a token
// and committing it.
var errGrantChanged = errors.New("grant changed while minting")

// mintFrom signs a token for grant and commits it, once, if the request is
// still approved and the grant still live and unchanged. On success grant
// is updated in place to the committed grant.
func (s *Service) mintFrom(ctx context.Context, req *TaskRequest, grant *Grant, agentID, jkt string, now time.Time) (string, *AccessClaims, *Token, error) {
	requestID := req.ID
	claims := s.accessClaims(req, grant, jkt, now)
	raw, err := s.signAccess(claims)
	if err != nil {
		return "", nil, nil, err
	}
	tok := &Token{JTI: claims.JTI, GrantID: grant.ID, AgentID: agentID, KeyID: s.keys.signer().meta.ID,
		IssuedAt: now, ExpiresAt: time.Unix(claims.Expiry, 0).UTC(), JKT: jkt}
	// A refusal is decided before anything is written and handed back as a
	// value, not as the transaction's error: a failing call makes the
	// store's group commit run the rest of its group again, so an agent
	// redeeming twice at once must not slow everyone's commits.
	var refused error
	err = s.store.Batch(ctx, func(tx Tx) error {
		refused = nil
		refuse := func(err error) error { refused = err; return nil }
		r, err := tx.Request(requestID)
		if err != nil {
			return err
		}
		if r.State != RequestApproved {
			return refuse(Errorf(ECONFLICT, "the token for this request was already issued").WithReason(ReasonInvalidGrant))
		}
		g, err := tx.Grant(grant.ID)
		if err != nil {
			return err
		}
		issuer, err := tx.Issuer()
		if err != nil {
			return err
		}
		ast, err := tx.AgentState(agentID)
		if err != nil {
			return err
		}
		if issuer.Frozen {
			return refuse(Errorf(EFROZEN, "issuance is frozen").WithReason(ReasonAccessDenied))
		}
		if st := StatusOf(g, issuer, ast, now); !st.Live() {
			return refuse(Errorf(EFORBIDDEN, "the grant %s", st.Why()).WithReason(ReasonAccessDenied))
		}
		if !g.ExpiresAt.Equal(grant.ExpiresAt) || !reflect.DeepEqual(g.Terms, grant.Terms) {
			return refuse(errGrantChanged)
		}
		r.State = RequestRedeemed
		g.TokenJTI, g.JKT = tok.JTI, jkt
		if err := tx.PutToken(tok); err != nil {
			return err
		}
		if err := tx.PutGrant(g); err != nil {
			return err
		}
		if err := tx.PutRequest(r); err != nil {
			return err
		}
		*grant = *g
		binding := "bearer"
		if jkt != "" {
			binding = "DPoP key " + jkt
		}
		e := s.audit(AuditTokenIssued, agentActor(agentID), nil, "token issued, bound to "+binding)
		e.AgentID, e.RequestID, e.GrantID, e.JTI = agentID, r.ID, g.ID, tok.JTI
		e.Data = auditData(map[string]any{"exp": tok.ExpiresAt, "kid": tok.KeyID, "jkt": jkt, "aud": claims.Audience})
		return tx.AppendAudit(e)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		return "", nil, nil, err
	}
	return raw, claims, tok, nil
}

func (s *Service) accessClaims(req *TaskRequest, g *Grant, jkt string, now time.Time) *AccessClaims {
	c := &AccessClaims{
		Issuer: s.opts.Issuer, Subject: g.AgentID, ClientID: g.AgentID, Audience: g.Terms.Resource,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: g.ExpiresAt.Unix(),
		JTI: s.newSecretID(16), Scope: strings.Join(g.Terms.ResourceScopes(), " "),
		Details: g.Terms.Details, SID: g.ID,
		Writ: WritClaims{Task: req.ID, IntentSHA256: IntentDigest(req.Intent), Decision: req.DecisionID,
			Approver: ApproverRef{Issuer: g.Approver.Issuer, Subject: g.Approver.Subject},
			Parent:   req.ParentID, Epoch: g.Epoch, AgentEpoch: g.AgentEpoch},
	}
	if jkt != "" {
		c.Cnf = &Confirmation{JKT: jkt}
	}
	return c
}

func (s *Service) signAccess(c *AccessClaims) (string, error) {
	return s.Sign("at+jwt", c)
}

// idToken names the approving operator to the agent (CIBA §10.1.1).
func (s *Service) idToken(req *TaskRequest, g *Grant, accessToken string, now, exp time.Time) (string, error) {
	claims := map[string]any{
		"iss": s.opts.Issuer, "sub": g.Approver.Subject, "aud": g.AgentID,
		"iat": now.Unix(), "exp": exp.Unix(),
		"idp": g.Approver.Issuer, "at_hash": s.atHash(accessToken),
		"urn:openid:params:jwt:claim:auth_req_id": req.ID,
	}
	if g.Approver.Email != "" {
		claims["email"] = g.Approver.Email
	}
	if g.Approver.Name != "" {
		claims["name"] = g.Approver.Name
	}
	if !g.Approver.AuthTime.IsZero() {
		claims["auth_time"] = g.Approver.AuthTime.Unix()
	}
	return s.Sign("JWT", claims)
}

// atHash is the left half of the access token's hash, with the hash the
// signing algorithm uses (SHA-512 for Ed25519).
func (s *Service) atHash(token string) string {
	var h hash.Hash = sha256.New()
	if s.keys.signer().meta.Alg == "EdDSA" {
		h = sha512.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
