package broker

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client tokens are what a resource server gets with the client
// credentials grant (RFC 6749 §4.4) to follow the revocation feed as any
// SSF receiver does: an RFC 9068 access token whose audience is the feed,
// never a resource. They carry no authority over any resource; agents get
// task tokens only, through CIBA.

// The scopes of the revocation feed (CAEP Interoperability Profile, "OAuth
// Scopes"): managing streams, and reading them and their events.
const (
	ScopeSSFManage = "ssf.manage"
	ScopeSSFRead   = "ssf.read"
	// ScopeIntrospect lets a resource server call the introspection
	// endpoint with this token as a Bearer credential (RFC 7662 §2.1)
	// instead of a fresh client assertion on every call.
	ScopeIntrospect = "introspect"
)

// Protocol reasons of a refused client token (RFC 6750 §3.1).
const (
	ReasonInvalidToken      = "invalid_token"
	ReasonInsufficientScope = "insufficient_scope"
)

// ClientTokenLifetime is how long a client token lives: long enough that a
// receiver polling every few seconds asks for one rarely, short enough that
// a resource server dropped from the configuration is shut out soon.
const ClientTokenLifetime = 10 * time.Minute

// ClientClaims are the claims of a client token (RFC 9068 §2.2).
type ClientClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"` // the resource server's client id
	ClientID string `json:"client_id"`
	Audience string `json:"aud"` // always ClientTokenAudience
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	JTI      string `json:"jti"`
	Scope    string `json:"scope"`
	// SID is never set in a client token; it is decoded so that a task
	// token (which always has one) is refused by name.
	SID string `json:"sid,omitempty"`
}

// HasScope reports whether the token grants scope.
func (c *ClientClaims) HasScope(scope string) bool {
	for sc := range strings.FieldsSeq(c.Scope) {
		if sc == scope {
			return true
		}
	}
	return false
}

// ClientTokenAudience is the aud of every client token: the issuer's
// revocation feed. No task token has it (theirs is a resource URI), so
// neither kind can pass for the other.
func (s *Service) ClientTokenAudience() string {
	return strings.TrimSuffix(s.opts.Issuer, "/") + "/ssf"
}

// ClientScopes checks the scopes a client asks for and returns them
// deduplicated, in the order asked; none asked means both feed scopes
// (introspect must be asked for).
// Any other scope is an EINVALID error with reason invalid_scope.
func ClientScopes(asked []string) ([]string, error) {
	if len(asked) == 0 {
		return []string{ScopeSSFRead, ScopeSSFManage}, nil
	}
	out := make([]string, 0, 3)
	for _, sc := range asked {
		if sc != ScopeSSFRead && sc != ScopeSSFManage && sc != ScopeIntrospect {
			return nil, Errorf(EINVALID, "scope %q is not offered to resource servers; ask for %s, %s and/or %s",
				clipQuoted(sc), ScopeSSFRead, ScopeSSFManage, ScopeIntrospect).WithReason(ReasonInvalidScope)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// MintClientToken signs a client token for the resource server clientID
// (authenticated by the caller) with the given feed scopes (nil: both).
// It is not audited: it grants nothing over a resource. It is minted even
// while the issuer is frozen, since a freeze is exactly when resource
// servers must keep hearing about revocations.
func (s *Service) MintClientToken(clientID string, scopes []string) (string, time.Time, error) {
	if clientID == "" {
		return "", time.Time{}, Errorf(EINVALID, "a client token needs a client id")
	}
	if _, ok := s.AgentConfig(clientID); ok {
		return "", time.Time{}, Errorf(EFORBIDDEN, "client %s is an agent; agents get task tokens through CIBA only", clientID).
			WithReason(ReasonUnauthorizedClient)
	}
	scopes, err := ClientScopes(scopes)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now().UTC()
	// A retired signing key is kept for the longest grant lifetime past
	// its retirement; a client token must not outlive its key.
	life := ClientTokenLifetime
	if m := s.cfg.Limits.MaxTTL; m > 0 && m < life {
		life = m
	}
	exp := now.Add(life).Truncate(time.Second)
	c := &ClientClaims{
		Issuer: s.opts.Issuer, Subject: clientID, ClientID: clientID, Audience: s.ClientTokenAudience(),
		IssuedAt: now.Unix(), Expiry: exp.Unix(), JTI: s.newSecretID(16), Scope: strings.Join(scopes, " "),
	}
	raw, err := s.Sign("at+jwt", c)
	if err != nil {
		return "", time.Time{}, err
	}
	return raw, exp, nil
}

// VerifyClientToken checks a client token: signature by one of the
// issuer's keys, typ at+jwt, iss, aud (the feed), exp. Every refusal is an
// EUNAUTHORIZED error with reason invalid_token; a task token is refused.
func (s *Service) VerifyClientToken(raw string) (*ClientClaims, error) {
	bad := func(format string, args ...any) (*ClientClaims, error) {
		return nil, Errorf(EUNAUTHORIZED, format, args...).WithReason(ReasonInvalidToken)
	}
	if len(raw) > 16<<10 || strings.Count(raw, ".") != 2 {
		return bad("the access token is not a compact JWT")
	}
	// A resource server presents the same token on every call for minutes:
	// its signature is checked once, its expiry every time. An expired one
	// is verified in full below, which says it expired.
	if c, ok := s.KnownClientToken(raw); ok {
		return c, nil
	}
	digest := tokenDigest(raw)
	jws, err := jose.ParseSignedCompact(raw, accessAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the access token is not a signed JWT")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return bad("the access token's typ is %q, not at+jwt", clipQuoted(typ))
	}
	k, ok := s.keys.key(h.KeyID)
	if !ok {
		return bad("the access token is signed by an unknown key")
	}
	if h.Algorithm != k.meta.Alg {
		return bad("the access token's alg does not match its key")
	}
	payload, err := jws.Verify(k.pub)
	if err != nil {
		return bad("the access token's signature does not verify")
	}
	var c ClientClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the access token's claims are malformed")
	}
	switch {
	case c.Issuer != s.opts.Issuer:
		return bad("the access token was issued by %q", clipQuoted(c.Issuer))
	case c.SID != "" || c.Audience != s.ClientTokenAudience():
		return bad("the access token is not for the revocation feed (aud %q); get one with the client credentials grant", clipQuoted(c.Audience))
	case c.Subject == "" || c.ClientID != c.Subject || c.JTI == "":
		return bad("the access token's claims are malformed")
	case s.now().Unix() >= c.Expiry:
		return bad("the access token expired at %s", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	s.clientTokens.put(digest, h.KeyID, &c)
	return &c, nil
}

// KnownClientToken returns the claims of raw when it is a client token
// this service has verified before, by a key it still holds, and that has
// not expired: a lookup, no signature check. Anything else is not ok, and
// the caller verifies it in full with VerifyClientToken, which says why it
// is refused.
func (s *Service) KnownClientToken(raw string) (*ClientClaims, bool) {
	if len(raw) > 16<<10 {
		return nil, false
	}
	c, ok := s.clientTokens.get(tokenDigest(raw), s.keys.holds)
	if !ok || s.now().Unix() >= c.Expiry {
		return nil, false
	}
	return c, true
}

// clipQuoted shortens caller-supplied text quoted back in an error.
func clipQuoted(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
