package load

import (
	"context"
	"fmt"
	"net/url"
)

// liveTokens is how many tokens the introspection scenario asks about,
// in turn.
const liveTokens = 16

// Introspect runs the introspection scenario: o.Clients resource-server
// clients introspecting live tokens, each call authenticated by the
// resource server's cached client-credentials token (scope introspect),
// as a guard does once it has one.
func Introspect(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	ep, err := discover(ctx, o.HTTPClient, o.Issuer)
	if err != nil {
		return Result{}, err
	}
	bearer, err := clientToken(ctx, o, ep)
	if err != nil {
		return Result{}, err
	}
	// The live tokens come from full cycles of the last agents, whose
	// share of the submission limit the cycle scenario needs least.
	agents := o.Setup.Agents[max(0, len(o.Setup.Agents)-liveTokens):]
	c, err := newCycler(Options{Setup: &Setup{Agents: agents}, HTTPClient: o.HTTPClient}, ep)
	if err != nil {
		return Result{}, err
	}
	if err := c.presign(ctx, liveTokens); err != nil {
		return Result{}, err
	}
	tokens := make([]string, liveTokens)
	for i := range tokens {
		if tokens[i], err = c.cycle(ctx); err != nil {
			return Result{}, fmt.Errorf("load: mint a token to introspect: %w", err)
		}
	}
	r := drive(ctx, o, "introspect", func(ctx context.Context, _ int, seq int64) error {
		a, err := post(ctx, o.HTTPClient, ep.introspect, url.Values{"token": {tokens[seq%liveTokens]}},
			"Authorization", "Bearer "+bearer)
		if err != nil {
			return err
		}
		if a.Active == nil || !*a.Active {
			return fmt.Errorf("%s: a live token is not active", ep.introspect)
		}
		return nil
	})
	return r, ctx.Err()
}

// clientToken gets the resource server's client-credentials token for
// introspection (private_key_jwt, scope introspect).
func clientToken(ctx context.Context, o Options, ep endpoints) (string, error) {
	rs, err := newClient(o.Setup.Resource)
	if err != nil {
		return "", err
	}
	a, err := rs.assertion(ep.issuer)
	if err != nil {
		return "", err
	}
	tok, err := post(ctx, o.HTTPClient, ep.token, authed(a, url.Values{"grant_type": {grantTypeClient}, "scope": {"introspect"}}))
	if err != nil {
		return "", fmt.Errorf("load: the resource server's introspection token: %w", err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("load: %s answered no access_token for client_credentials", ep.token)
	}
	return tok.AccessToken, nil
}
