package guard

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/wire"
)

// maxTokenSize bounds an access token; writ's are well under 2 KiB.
const maxTokenSize = 16 << 10

// Principal is who a verified request acts for and what it may do. The
// guard shares one Principal between the requests of a token: do not
// modify it.
type Principal struct {
	Agent    string // sub: the agent's id
	ClientID string
	GrantID  string // sid: revoking the grant revokes the token
	TokenID  string // jti
	// Scopes and Details are what the grant allows now: the token's, or
	// narrower when an operator narrowed the grant while it was live.
	Scopes    []string
	Details   []wire.AuthorizationDetail
	IssuedAt  time.Time
	ExpiresAt time.Time
	// JKT is the thumbprint of the DPoP key the token is bound to ("" for a
	// bearer token); the request proved possession of it.
	JKT string
	// The consent trail: task, intent digest, decision, approving operator,
	// parent task.
	Task         string
	IntentSHA256 string
	Decision     string
	Approver     wire.ApproverRef
	ParentTask   string
	// Narrowed says the grant was narrowed after the token was minted.
	Narrowed bool
}

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// Allows reports whether the token allows action at location, by writ's
// one rule (wire.AllowsAt): its scope must name the action, and when an
// authorization detail names the action, one such detail must cover the
// location (a location covers itself and the paths beneath it, judged by
// wire.CheckLocation, so "/acme/..;/admin" never passes for a path
// beneath /acme, and an ambiguous location is allowed nowhere).
func (p *Principal) Allows(location, action string) bool {
	return wire.AllowsAt(p.Scopes, p.Details, location, action)
}

// tokenClaims are the claims of a writ access token as the guard reads them.
type tokenClaims struct {
	Issuer    string                     `json:"iss"`
	Subject   string                     `json:"sub"`
	ClientID  string                     `json:"client_id"`
	Audience  json.RawMessage            `json:"aud"`
	IssuedAt  *float64                   `json:"iat"`
	NotBefore *float64                   `json:"nbf"`
	Expiry    *float64                   `json:"exp"`
	JTI       string                     `json:"jti"`
	Scope     string                     `json:"scope"`
	Details   []wire.AuthorizationDetail `json:"authorization_details"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	SID  string          `json:"sid"`
	Writ wire.WritClaims `json:"writ"`
}

// entry is a verified token: checked once, then found by its bytes.
type entry struct {
	raw        string
	principal  *Principal
	exp, nbf   int64 // unix seconds; nbf 0 when absent
	iat        int64
	jkt        string
	sid, jti   string
	agent      string
	epoch      uint64
	agentEpoch uint64
	// verdict caches the revocation check for the deny set's generation.
	verdict atomic.Pointer[verdict]
}

// verdict is the outcome of checking an entry against one generation of
// the deny set.
type verdict struct {
	gen       uint64
	revoked   string     // why, or "" when live
	principal *Principal // narrowed when the grant was narrowed
	exp       int64      // the narrowed exp, when narrower
}

// verifyToken checks a token that is not in the cache: size, typ, alg,
// signature with writ's key, and the claims that do not change with time.
func (g *Guard) verifyToken(ctx context.Context, raw string) (*entry, *Error) {
	if len(raw) > maxTokenSize || strings.Count(raw, ".") != 2 || !token68(raw) {
		return nil, invalidToken(ReasonMalformed, "the access token is not a compact JWT")
	}
	jws, err := jose.ParseSignedCompact(raw, g.algs)
	if err != nil || len(jws.Signatures) != 1 {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, invalidToken(ReasonAlg, "the access token's signature algorithm is not accepted")
		}
		return nil, invalidToken(ReasonMalformed, "the access token is not a signed JWT")
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, invalidToken(ReasonType, "the token's typ is "+quoteValue(typ)+", not at+jwt")
	}
	if _, crit := h.ExtraHeaders["crit"]; crit {
		return nil, invalidToken(ReasonMalformed, "the token has a crit header, which is not understood")
	}
	key, err := g.jwks.key(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, errUnknownKey) {
			return nil, invalidToken(ReasonUnknownKey, "the token is signed with a key writ does not publish")
		}
		g.log.Warn("cannot fetch writ's JWKS", "err", err)
		e := refuse(503, "temporarily_unavailable", ReasonKeys, "writ's signing keys cannot be fetched")
		e.RetryAfter = time.Second
		return nil, e
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, invalidToken(ReasonAlg, "the token's alg does not match its key")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalidToken(ReasonSignature, "the token's signature does not verify")
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidToken(ReasonClaims, "the token's claims are malformed")
	}
	if c.Issuer != g.cfg.Issuer {
		return nil, invalidToken(ReasonIssuer, "the token was issued by "+quoteValue(c.Issuer))
	}
	if !hasAudience(c.Audience, g.cfg.Audience) {
		return nil, invalidToken(ReasonAudience, "the token is not for this resource")
	}
	exp, ok1 := seconds(c.Expiry)
	iat, ok2 := seconds(c.IssuedAt)
	nbf, ok3 := seconds(c.NotBefore)
	switch {
	case !ok1 || exp == 0:
		return nil, invalidToken(ReasonClaims, "the token has no valid exp")
	case !ok2 || !ok3:
		return nil, invalidToken(ReasonClaims, "the token's iat or nbf is not a NumericDate")
	case c.JTI == "" || c.SID == "" || c.Subject == "":
		return nil, invalidToken(ReasonClaims, "the token lacks jti, sid or sub")
	}
	e := &entry{raw: raw, exp: exp, nbf: nbf, iat: iat, sid: c.SID, jti: c.JTI, agent: c.Subject,
		epoch: c.Writ.Epoch, agentEpoch: c.Writ.AgentEpoch}
	if c.Cnf != nil {
		if c.Cnf.JKT == "" {
			return nil, invalidToken(ReasonClaims, "the token's cnf has no jkt")
		}
		e.jkt = c.Cnf.JKT
	}
	e.principal = &Principal{
		Agent: c.Subject, ClientID: c.ClientID, GrantID: c.SID, TokenID: c.JTI,
		Scopes: strings.Fields(c.Scope), Details: c.Details,
		IssuedAt: time.Unix(iat, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(), JKT: e.jkt,
		Task: c.Writ.Task, IntentSHA256: c.Writ.IntentSHA256, Decision: c.Writ.Decision,
		Approver: c.Writ.Approver, ParentTask: c.Writ.Parent,
	}
	return e, nil
}

// token68 reports whether s has only the characters of RFC 7235 token68
// that a JWT can contain.
func token68(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func hasAudience(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(raw, &many) == nil && slices.Contains(many, want)
}

// seconds reads an optional NumericDate as whole seconds.
func seconds(v *float64) (int64, bool) {
	if v == nil {
		return 0, true
	}
	if math.IsNaN(*v) || *v < 0 || *v > 1<<40 {
		return 0, false
	}
	return int64(*v), true
}

// tokenCache remembers verified tokens by their bytes, so a token is
// verified once and every later request costs a map lookup.
type tokenCache struct {
	m     sync.Map // string → *entry
	n     atomic.Int64
	max   int64
	sweep sync.Mutex
}

func (c *tokenCache) get(raw string) *entry {
	if v, ok := c.m.Load(raw); ok {
		return v.(*entry)
	}
	return nil
}

func (c *tokenCache) put(e *entry, now int64) {
	if _, loaded := c.m.LoadOrStore(e.raw, e); loaded {
		return
	}
	if c.n.Add(1) > c.max && c.sweep.TryLock() {
		defer c.sweep.Unlock()
		// Expired tokens go first; if that is not enough, any, down to
		// three quarters full.
		c.m.Range(func(k, v any) bool {
			if v.(*entry).exp < now {
				c.m.Delete(k)
				c.n.Add(-1)
			}
			return true
		})
		c.m.Range(func(k, v any) bool {
			if c.n.Load() <= c.max*3/4 {
				return false
			}
			c.m.Delete(k)
			c.n.Add(-1)
			return true
		})
	}
}

func (c *tokenCache) len() int64 { return c.n.Load() }
