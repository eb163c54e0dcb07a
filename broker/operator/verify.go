package operator

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/writhq/writ/broker"
)

// idClaims are the claims writ reads beyond what go-oidc checks.
type idClaims struct {
	Email             string   `json:"email"`
	EmailVerified     any      `json:"email_verified"` // a bool, or "true" from some providers
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	AuthTime          *float64 `json:"auth_time"`
	AZP               string   `json:"azp"`
}

// verifyCheck carries what a particular flow adds to verification.
type verifyCheck struct {
	// nonce is the nonce the browser flow sent; "" where the flow has none.
	nonce string
	// prev is the session being refreshed or resumed: the new ID token must
	// name the same (iss, sub).
	prev *Session
	// allowExpired skips go-oidc's expiry check, for a resumed session that
	// is refreshed right after.
	allowExpired bool
	// alone is an ID token that arrives without the access token it was
	// issued with (the RFC 8693 exchange at writ): at_hash cannot be
	// checked, and the token is taken on its signature and claims.
	alone bool
}

// sessionFromToken verifies the ID token in a token response and turns it
// into a Session: go-oidc checks signature, iss, aud and exp; writ adds
// nonce, azp, at_hash, (iss, sub) continuity and the approver group.
func (c *Client) sessionFromToken(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, chk verifyCheck) (*Session, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, &VerifyError{Reason: "the provider's token response has no id_token (is the openid scope allowed for this client?)"}
	}
	return c.verifyIDToken(ctx, p, raw, tok, chk)
}

func (c *Client) verifyIDToken(ctx context.Context, p *oidc.Provider, raw string, tok *oauth2.Token, chk verifyCheck) (*Session, error) {
	v := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now, SkipExpiryCheck: chk.allowExpired})
	idt, err := v.Verify(c.httpContext(ctx), raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, &VerifyError{Reason: fmt.Sprintf("expired at %s", expired.Expiry.UTC().Format(time.RFC3339)), Err: err}
		}
		return nil, &VerifyError{Reason: "verification failed", Err: err}
	}
	if chk.nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(chk.nonce)) != 1 {
		return nil, &VerifyError{Reason: "nonce does not match the one this sign-in sent"}
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		return nil, &VerifyError{Reason: "unreadable claims", Err: err}
	}
	// OIDC Core 3.1.3.7: with several audiences azp must be present and be
	// us; when present at all it must be us.
	if (len(idt.Audience) > 1 || claims.AZP != "") && claims.AZP != c.cfg.ClientID {
		return nil, &VerifyError{Reason: fmt.Sprintf("authorized party (azp) is %q, not this client %q", claims.AZP, c.cfg.ClientID)}
	}
	if idt.AccessTokenHash != "" && !chk.alone {
		if tok == nil || tok.AccessToken == "" {
			return nil, &VerifyError{Reason: "at_hash present but no access token came with the ID token"}
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &VerifyError{Reason: "at_hash does not match the access token", Err: err}
		}
	}
	if idt.Subject == "" {
		return nil, &VerifyError{Reason: "no sub claim"}
	}
	if prev := chk.prev; prev != nil && (prev.Operator.Issuer != idt.Issuer || prev.Operator.Subject != idt.Subject) {
		return nil, &VerifyError{Reason: fmt.Sprintf("the refreshed ID token names %s|%s, not %s", idt.Issuer, idt.Subject, prev.Operator.ID())}
	}

	op := broker.Operator{
		Issuer:  idt.Issuer,
		Subject: idt.Subject,
		Email:   claims.Email,
		Name:    claims.Name,
		Dev:     c.cfg.Dev,
		// Only an email the provider vouches for may identify an owner.
		EmailVerified: claims.Email != "" && (claims.EmailVerified == true || claims.EmailVerified == "true"),
	}
	if op.Name == "" {
		op.Name = claims.PreferredUsername
	}
	if claims.AuthTime != nil {
		op.AuthTime = time.Unix(int64(*claims.AuthTime), 0).UTC()
	} else if chk.prev != nil {
		op.AuthTime = chk.prev.Operator.AuthTime
	}

	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return nil, &VerifyError{Reason: "unreadable claims", Err: err}
	}
	groups, err := c.checkApprover(op, all)
	if err != nil {
		return nil, err
	}
	s := &Session{
		Operator: op,
		Groups:   groups,
		IssuedAt: idt.IssuedAt,
		Expiry:   idt.Expiry,
		tokens:   &secrets{idToken: raw, oauth: tok},
	}
	c.cfg.Logger.Debug("operator verified", "session", s)
	return s, nil
}

// checkApprover finds the groups claim and requires the approver group in it.
func (c *Client) checkApprover(op broker.Operator, claims map[string]any) ([]string, error) {
	v, found := lookupClaim(claims, c.cfg.GroupsClaim)
	groups := claimStrings(v)
	if found && slices.Contains(groups, c.cfg.ApproverGroup) {
		return groups, nil
	}
	e := &NotApproverError{Operator: op, Claim: c.cfg.GroupsClaim, Group: c.cfg.ApproverGroup, Found: found}
	if found {
		e.Value = claimJSON(v)
	}
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		_, e.ByReference = names[c.cfg.GroupsClaim]
		if !e.ByReference {
			_, e.ByReference = names[strings.SplitN(c.cfg.GroupsClaim, ".", 2)[0]]
		}
	}
	return nil, e
}

// lookupClaim finds a claim by its exact name first (names may contain dots
// or be URLs), then as a dotted path into nested objects.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// claimStrings reads a claim as a list of groups: a string is one group, an
// array its string members. Anything else holds no groups.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
