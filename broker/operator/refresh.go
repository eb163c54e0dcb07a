package operator

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// retryUnreachable is how long KeepAlive waits before trying again to reach
// a provider that did not answer a refresh.
const retryUnreachable = 15 * time.Second

// KeepAlive keeps s alive for as long as ctx lives: it refreshes it shortly
// before it ends (at RefreshAt) and tells report about each renewed session.
// When the session ends (no refresh token, the provider refuses, the group
// was taken away, or the provider stayed unreachable until expiry) it calls
// report(nil, err) once and returns. report runs on KeepAlive's goroutine; a
// console passes it to Program.Send. It returns when ctx ends.
func (c *Client) KeepAlive(ctx context.Context, s *Session, report func(*Session, error)) {
	at := s.RefreshAt()
	for {
		if !s.Refreshable() {
			at = s.Expiry
		}
		timer := time.NewTimer(max(at.Sub(c.cfg.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if !s.Refreshable() {
			report(nil, ErrSessionEnded)
			return
		}
		ns, err := c.Refresh(ctx, s)
		var ue *UnreachableError
		switch {
		case ctx.Err() != nil:
			return
		case errors.As(err, &ue) && !s.Ended(c.cfg.Now()):
			// The session is still good: try again in a while.
			c.cfg.Logger.Warn("operator session refresh failed; retrying", "error", err)
			at = c.cfg.Now().Add(retryUnreachable)
			if at.After(s.Expiry) {
				at = s.Expiry
			}
			continue
		case errors.As(err, &ue):
			report(nil, fmt.Errorf("%w: %v", ErrSessionEnded, err))
			return
		case err != nil:
			report(nil, err)
			return
		}
		s, at = ns, ns.RefreshAt()
		report(ns, nil)
	}
}
