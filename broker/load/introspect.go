package load

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// liveTokens is how many tokens the introspection scenarios ask about,
// in turn.
const liveTokens = 16

// Introspect runs the introspection scenario with a cached client token:
// o.Clients resource-server clients introspecting live tokens, each call
// authenticated by the resource server's client-credentials token (scope
// introspect), as a guard does once it has one. writ only: oidc-provider
// authenticates introspection callers as clients on every call.
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
	tokens, err := mintTokens(ctx, o, ep)
	if err != nil {
		return Result{}, err
	}
	header := []string{"Authorization", "Bearer " + bearer}
	wt, ok := newWireTarget(ep.introspect, header...)
	if !ok {
		r := drive(ctx, o, "introspect", func(ctx context.Context, _ int, seq int64) error {
			return introspectOne(ctx, o, ep, url.Values{"token": {tokens[seq%liveTokens]}}, header...)
		})
		return r, ctx.Err()
	}
	// Every request is prepared before the measurement: the body naming
	// each token; the connections and buffers are each worker's own.
	bodies := make([][]byte, len(tokens))
	for i, t := range tokens {
		bodies[i] = []byte("token=" + url.QueryEscape(t))
	}
	conns := wireConns(wt, o)
	defer closeWireConns(conns)
	r := drive(ctx, o, "introspect", func(ctx context.Context, w int, seq int64) error {
		status, body, err := conns[w].post(ctx, bodies[seq%liveTokens])
		if err != nil {
			return err
		}
		return introspectionAnswer(ep.introspect, status, body)
	})
	return r, ctx.Err()
}

// IntrospectAssert runs the introspection scenario with a client
// assertion per call (RFC 7523 private_key_jwt, each with its own jti),
// the way a resource server without a cached token calls any RFC 7662
// endpoint. The assertions are signed before the measurement, so the load
// process's signing does not compete with the server for the cores; the
// scenario ends early, Exhausted, if they run out.
func IntrospectAssert(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	ep, err := discover(ctx, o.HTTPClient, o.Issuer)
	if err != nil {
		return Result{}, err
	}
	tokens, err := mintTokens(ctx, o, ep)
	if err != nil {
		return Result{}, err
	}
	n := int(float64(o.AssertRate) * o.Duration.Seconds())
	t0 := time.Now()
	assertions, err := presignAssertions(ctx, o, ep, n)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(o.Progress, "%s introspect-assert: presigned %d client assertions in %s\n", o.Target, n, time.Since(t0).Round(time.Millisecond))
	var next atomic.Int64
	wt, ok := newWireTarget(ep.introspect)
	if !ok {
		r := drive(ctx, o, "introspect-assert", func(ctx context.Context, _ int, seq int64) error {
			i := int(next.Add(1) - 1)
			if i >= len(assertions) {
				return errExhausted
			}
			a := string(assertions[i])
			assertions[i] = nil
			return introspectOne(ctx, o, ep, authed(a, url.Values{"token": {tokens[seq%liveTokens]}}))
		})
		return r, ctx.Err()
	}
	// The body is the client assertion between a prepared head and the
	// prepared tail naming the token, as authed and url.Values would
	// encode it (the assertion is a compact JWS: nothing to escape).
	head := []byte("client_assertion=")
	tails := make([][]byte, len(tokens))
	for i, t := range tokens {
		tails[i] = []byte("&client_assertion_type=" + url.QueryEscape(assertionTypeJWTBearer) + "&token=" + url.QueryEscape(t))
	}
	conns := wireConns(wt, o)
	defer closeWireConns(conns)
	r := drive(ctx, o, "introspect-assert", func(ctx context.Context, w int, seq int64) error {
		i := int(next.Add(1) - 1)
		if i >= len(assertions) {
			return errExhausted
		}
		a := assertions[i]
		assertions[i] = nil
		status, body, err := conns[w].post(ctx, head, a, tails[seq%liveTokens])
		if err != nil {
			return err
		}
		return introspectionAnswer(ep.introspect, status, body)
	})
	return r, ctx.Err()
}

// introspectOne asks about one live token and insists it is active.
func introspectOne(ctx context.Context, o Options, ep endpoints, form url.Values, header ...string) error {
	a, err := post(ctx, o.HTTPClient, ep.introspect, form, header...)
	if err != nil {
		return err
	}
	if a.Active == nil || !*a.Active {
		return fmt.Errorf("%s: a live token is not active", ep.introspect)
	}
	return nil
}

// mintTokens runs liveTokens full cycles for the live tokens the
// introspection scenarios ask about. They come from the last agents,
// whose share of writ's submission limit the cycle scenario needs least.
func mintTokens(ctx context.Context, o Options, ep endpoints) ([]string, error) {
	mo := o
	mo.Setup = &Setup{Agents: o.Setup.Agents[max(0, len(o.Setup.Agents)-liveTokens):]}
	c, err := newCycler(mo, ep)
	if err != nil {
		return nil, err
	}
	if err := c.presign(ctx, liveTokens); err != nil {
		return nil, err
	}
	tokens := make([]string, liveTokens)
	for i := range tokens {
		if tokens[i], err = c.cycle(ctx); err != nil {
			hint := ""
			if errors.Is(err, errThrottled) {
				hint = " (the agents' submissions are used up: run with more agents)"
			}
			return nil, fmt.Errorf("load: mint a token to introspect at %s: %w%s", o.Target, err, hint)
		}
	}
	return tokens, nil
}

// presignAssertions signs n client assertions of the resource server on
// every core. A compact JWS is base64url and dots, which a form carries
// as they are: each is checked to need no escaping, so that the bytes are
// written into requests as they are.
func presignAssertions(ctx context.Context, o Options, ep endpoints, n int) ([][]byte, error) {
	rs, err := newClient(o.Setup.Resource)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				a, err := rs.assertion(ep.issuer)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if url.QueryEscape(a) != a {
					err := fmt.Errorf("an assertion with characters a form must escape: %.20q…", a)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				out[i] = []byte(a)
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, fmt.Errorf("load: presign client assertions: %w", *p)
	}
	return out, ctx.Err()
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

// wireConns makes a connection to t for each of o's clients, each call
// allowed the time the net/http client allows a request.
func wireConns(t *wireTarget, o Options) []*wireConn {
	idle := o.HTTPClient.Timeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	conns := make([]*wireConn, o.Clients)
	for i := range conns {
		conns[i] = t.conn(idle)
	}
	return conns
}

func closeWireConns(conns []*wireConn) {
	for _, c := range conns {
		c.close()
	}
}
