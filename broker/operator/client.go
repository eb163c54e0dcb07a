package operator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discoveryTimeout bounds provider discovery, so an unreachable provider is
// reported promptly rather than after the HTTP client's own timeout.
const discoveryTimeout = 15 * time.Second

// Client signs operators in at one provider. New does no I/O: discovery
// happens on first use and is retried until it succeeds, so a provider that
// is down at start-up can come back. A Client is safe for concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider
}

// New checks cfg and returns a client for it.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Issuer is the configured issuer URL.
func (c *Client) Issuer() string { return c.cfg.Issuer }

// Login is the configured flow, LoginDevice or LoginBrowser.
func (c *Client) Login() string { return c.cfg.Login }

// Dev reports whether this is the development provider.
func (c *Client) Dev() bool { return c.cfg.Dev }

// Remember reports whether sessions are kept on disk.
func (c *Client) Remember() bool { return c.cfg.Remember }

// ApproverGroup and GroupsClaim are what makes an operator an approver.
func (c *Client) ApproverGroup() string { return c.cfg.ApproverGroup }

// GroupsClaim is the claim name or dotted path the approver group is read from.
func (c *Client) GroupsClaim() string { return c.cfg.GroupsClaim }

// Now is the client's clock.
func (c *Client) Now() time.Time { return c.cfg.Now() }

// Discover fetches the provider's discovery document (once; later calls reuse
// it). Errors are *UnreachableError unless the provider answered with another
// issuer, which is a configuration error.
func (c *Client) Discover(ctx context.Context) error {
	_, err := c.discover(ctx)
	return err
}

func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	dctx, cancel := context.WithTimeout(c.httpContext(ctx), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, c.cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		switch {
		case errors.As(err, &mismatch):
			return nil, fmt.Errorf("operator sign-in: the provider at %s calls itself %q: set --oidc-issuer to exactly that", mismatch.Provided, mismatch.Discovered)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{Issuer: c.cfg.Issuer, Err: err}
	}
	c.provider = p
	return p, nil
}

// httpContext carries the configured HTTP client to go-oidc and x/oauth2.
func (c *Client) httpContext(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, c.cfg.HTTPClient)
	return context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
}

// oauth2Config is the x/oauth2 view of the client at provider p.
func (c *Client) oauth2Config(p *oidc.Provider, redirectURL string) *oauth2.Config {
	ep := p.Endpoint()
	if c.cfg.ClientSecret == "" {
		// A public client sends its id in the form; probing with an empty
		// Basic secret first only earns an invalid_client from strict providers.
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  redirectURL,
		Scopes:       c.cfg.Scopes,
	}
}

// transportError turns a failure to reach the provider into an
// *UnreachableError and passes everything else (answers from the provider,
// cancellation) through.
func (c *Client) transportError(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) {
		return &UnreachableError{Issuer: c.cfg.Issuer, Err: err}
	}
	return err
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
