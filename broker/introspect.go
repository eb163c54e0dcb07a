package broker

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Introspection is the answer about one token. Only Active matters to a
// caller that is not allowed to know more; the rest is for active tokens
// and for the broker's own records.
type Introspection struct {
	Active bool
	Claims *AccessClaims
	// Grant is the token's grant as the store holds it, shared with
	// other callers: it must not be modified.
	Grant *Grant
	// JTI is the token's jti once its signature verified, for logs.
	JTI string
	// Token is an active token's claims as signed, shared with other
	// callers: it must not be modified. The same token asked about again
	// while its grant is unchanged gives the same Token and Grant, so
	// (Token, Grant) may key anything derived from the answer.
	Token *AccessClaims
	// Why says why an inactive token is inactive, for logs and the console;
	// it is never sent to the caller (RFC 7662 §2.2).
	Why string
}

var accessAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// VerifyAccessToken checks a token's signature, type and issuer and returns
// its claims; it does not check expiry or revocation.
func (s *Service) VerifyAccessToken(raw string) (*AccessClaims, error) {
	if len(raw) > 16<<10 || strings.Count(raw, ".") != 2 {
		return nil, Errorf(EINVALID, "not a compact JWT")
	}
	digest := tokenDigest(raw)
	if c, ok := s.tokens.get(digest, s.keys.holds); ok {
		return c, nil
	}
	jws, err := jose.ParseSignedCompact(raw, accessAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, Errorf(EINVALID, "not a signed JWT")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
		return nil, Errorf(EINVALID, "token typ is %q, not at+jwt", typ)
	}
	k, ok := s.keys.key(h.KeyID)
	if !ok {
		return nil, Errorf(EINVALID, "token signed by unknown key %q", h.KeyID)
	}
	if h.Algorithm != k.meta.Alg {
		return nil, Errorf(EINVALID, "token alg %s does not match key %s", h.Algorithm, k.meta.Alg)
	}
	payload, err := jws.Verify(k.pub)
	if err != nil {
		return nil, Errorf(EINVALID, "bad token signature")
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.JTI == "" || c.SID == "" {
		return nil, Errorf(EINVALID, "malformed token claims")
	}
	if c.Issuer != s.opts.Issuer {
		return nil, Errorf(EINVALID, "token issued by %q", c.Issuer)
	}
	s.tokens.put(digest, h.KeyID, &c)
	return &c, nil
}

// Introspect answers whether raw is an active writ token (RFC 7662) and
// records the call as a use of its grant. Expired, revoked, frozen-epoch,
// foreign and malformed tokens are all simply inactive.
func (s *Service) Introspect(ctx context.Context, raw string) (*Introspection, error) {
	return s.IntrospectFor(ctx, raw, nil)
}

// IntrospectFor is Introspect for a caller that may only learn about the
// tokens of some audiences: a token whose audience mayAsk refuses (nil
// refuses none) is inactive to it and is not recorded as a use of its
// grant. The token is verified once for both checks.
func (s *Service) IntrospectFor(ctx context.Context, raw string, mayAsk func(aud string) bool) (*Introspection, error) {
	c, err := s.VerifyAccessToken(raw)
	if err != nil {
		return &Introspection{Why: ErrorMessage(err)}, nil
	}
	if mayAsk != nil && !mayAsk(c.Audience) {
		return &Introspection{JTI: c.JTI, Why: "the token is for another audience"}, nil
	}
	now := s.now()
	g, err := s.cachedGrant(ctx, c.SID)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return &Introspection{JTI: c.JTI, Why: "no such grant"}, nil
		}
		return nil, err
	}
	if g.TokenJTI != c.JTI {
		return &Introspection{JTI: c.JTI, Why: "token is not the one minted for its grant", Grant: g}, nil
	}
	if now.Unix() >= c.Expiry {
		s.usage.record(g.ID, now, false, true, "expired")
		return &Introspection{JTI: c.JTI, Why: "expired", Grant: g}, nil
	}
	if st := StatusOf(g, s.IssuerState(), s.agentState(g.AgentID), now); !st.Live() {
		s.usage.record(g.ID, now, false, true, string(st.Cause.Kind))
		return &Introspection{JTI: c.JTI, Why: "grant " + st.Why(), Grant: g}, nil
	}
	s.usage.record(g.ID, now, true, false, "")
	return &Introspection{Active: true, JTI: c.JTI, Claims: withGrantTerms(c, g), Grant: g, Token: c}, nil
}

// cachedGrant returns the grant id from the grant cache, or reads it
// from the store and keeps it there (introspection and guards' use
// reports). The grant is shared: read it, never change it. The cache
// holds what the store holds (grantcache.go); whether the grant is live
// is judged by the caller.
func (s *Service) cachedGrant(ctx context.Context, id string) (*Grant, error) {
	if g, ok := s.grants.get(id); ok {
		return g, nil
	}
	gen := s.grants.generation()
	var g *Grant
	err := s.store.View(ctx, func(tx TxReader) error {
		var err error
		g, err = tx.Grant(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.grants.put(g, gen)
	return g, nil
}

// withGrantTerms returns the claims as the grant stands now: an operator
// may have narrowed a live grant (NarrowGrant), and the token, signed
// before, cannot say so itself.
func withGrantTerms(c *AccessClaims, g *Grant) *AccessClaims {
	out := *c
	out.Scope = strings.Join(g.Terms.ResourceScopes(), " ")
	out.Details = g.Terms.Details
	out.Expiry = min(c.Expiry, g.ExpiresAt.Unix())
	return &out
}
