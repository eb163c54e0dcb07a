package operator

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// Refresh renews a session with its refresh token (the operator's own
// session only: agents never get refresh tokens). The new ID token is
// verified like the first, must name the same (iss, sub), and must still
// carry the approver group. A session without a refresh token, or one the
// provider refuses to refresh, has ended: ErrSessionEnded. A provider that
// cannot be reached gives *UnreachableError, and the old session stays good
// until its expiry.
func (c *Client) Refresh(ctx context.Context, s *Session) (*Session, error) {
	if !s.Refreshable() {
		return nil, ErrSessionEnded
	}
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	old := s.tokens.oauth
	// An expired copy makes the token source go to the token endpoint.
	stale := &oauth2.Token{RefreshToken: old.RefreshToken, TokenType: old.TokenType}
	tok, err := c.oauth2Config(p, "").TokenSource(c.httpContext(ctx), stale).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			c.Forget()
			return nil, fmt.Errorf("%w (the provider said %s)", ErrSessionEnded, re.ErrorCode)
		}
		return nil, c.flowError(ctx, "refresh", err)
	}
	if raw, _ := tok.Extra("id_token").(string); raw == "" {
		return nil, fmt.Errorf("%w (the provider's refresh response has no ID token)", ErrSessionEnded)
	}
	ns, err := c.sessionFromToken(ctx, p, tok, verifyCheck{prev: s})
	if err != nil {
		c.Forget()
		return nil, err
	}
	c.remember(ns)
	return ns, nil
}
