// Package client is the operator API's client: what `writ console
// --server` and the operator CLI use to reach a running `writ serve`. It
// exchanges the operator's ID token for a DPoP-bound operator token, makes
// every call with a fresh proof, retries a mutating call that lost its
// connection with the same Idempotency-Key, and follows the live event
// stream, resuming it after a reconnect.
//
// *Client implements the console's Backend (tui.Backend), so the same
// screens work in-process and remotely.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/opapi"
)

// Options configure a Client.
type Options struct {
	// Server is writ's public URL (the issuer), e.g. https://writ.example.com.
	Server string
	// IDToken returns the operator's current ID token (a signed-in,
	// refreshed session). It is called again when the operator token runs
	// out.
	IDToken func(ctx context.Context) (string, error)
	// HTTPClient's transport carries the calls; its Timeout is ignored for
	// the event stream. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// OnConnection is told when the event stream connects (err nil) or
	// loses its connection (err says why). It must not block.
	OnConnection func(connected bool, err error)
	// RetryFor is how long a mutating call that cannot reach the server
	// keeps being sent again, with the same Idempotency-Key, before it
	// fails (default 30 s): an action taken while the connection is down
	// is applied once, when it is back.
	RetryFor time.Duration
	// Backoff is the first wait between retries and reconnects, doubled
	// each time up to 5 s (default 250 ms).
	Backoff time.Duration
	Logger  *slog.Logger
}

// Client talks to one writ server as one operator. It is safe for
// concurrent use.
type Client struct {
	opts   Options
	base   string
	signer *dpop.Signer
	http   *http.Client // calls, with a timeout
	stream *http.Client // the event stream, without one
	log    *slog.Logger

	failed atomic.Int64 // calls that could not reach the server, for tests and diagnostics

	mu       sync.Mutex
	token    string
	tokenExp time.Time
	op       broker.Operator
	cfg      *broker.Config
	issuer   broker.IssuerState
	store    broker.StoreHealth
	agents   []broker.AgentView
}

// New returns a client with a fresh DPoP key; it does no I/O.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(opts.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("server %q is not an http(s) URL", opts.Server)
	}
	if opts.IDToken == nil {
		return nil, errors.New("operator API client: no ID token source: sign in first (writ login)")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := dpop.NewSigner(priv, jose.EdDSA)
	if err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = 30 * time.Second
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{opts: opts, base: u.String(), signer: signer, log: opts.Logger, store: broker.StoreHealth{Writable: true}}
	base := opts.HTTPClient.Transport
	tr := &dpop.Transport{Base: base, Signer: signer, Token: c.currentToken}
	c.http = &http.Client{Transport: tr, Timeout: opts.HTTPClient.Timeout}
	c.stream = &http.Client{Transport: tr}
	return c, nil
}

// FailedAttempts counts attempts that could not reach the server.
func (c *Client) FailedAttempts() int64 { return c.failed.Load() }

// Server is the server's URL.
func (c *Client) Server() string { return c.base }

// Operator is who the server knows this client as, after SignIn.
func (c *Client) Operator() broker.Operator {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.op
}

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// LoginInfo asks the server where operators sign in (unauthenticated).
func LoginInfo(ctx context.Context, server string, hc *http.Client) (*opapi.LoginInfo, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+opapi.PathLogin, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &UnreachableError{Server: server, Err: err}
	}
	defer resp.Body.Close()
	var li opapi.LoginInfo
	if err := decode(resp, &li); err != nil {
		return nil, err
	}
	return &li, nil
}

// SignIn exchanges the operator's ID token for an operator token bound to
// this client's key (RFC 8693), and loads the configuration.
func (c *Client) SignIn(ctx context.Context) error {
	if err := c.exchange(ctx); err != nil {
		return err
	}
	var cfg opapi.Config
	if err := c.call(ctx, http.MethodGet, "/v1/config", nil, &cfg, false); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = cfg.BrokerConfig()
	c.issuer = cfg.State
	c.mu.Unlock()
	return nil
}

func (c *Client) exchange(ctx context.Context) error {
	idt, err := c.opts.IDToken(ctx)
	if err != nil {
		return err
	}
	form := url.Values{
		"grant_type":           {opapi.GrantTypeTokenExchange},
		"subject_token":        {idt},
		"subject_token_type":   {opapi.TokenTypeIDToken},
		"requested_token_type": {opapi.TokenTypeAccessToken},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+opapi.PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// The exchange carries a proof but no token: the Transport's Token is
	// read per request, so clear it for this one by a plain transport.
	proof, err := c.signer.Proof(http.MethodPost, c.base+opapi.PathToken, dpop.ProofOptions{})
	if err != nil {
		return err
	}
	req.Header.Set("DPoP", proof)
	hc := &http.Client{Transport: c.opts.HTTPClient.Transport, Timeout: c.opts.HTTPClient.Timeout}
	resp, err := hc.Do(req)
	if err != nil {
		return &UnreachableError{Server: c.base, Err: err}
	}
	defer resp.Body.Close()
	var tr opapi.TokenResponse
	if err := decode(resp, &tr); err != nil {
		return err
	}
	c.mu.Lock()
	c.token, c.op = tr.AccessToken, tr.Operator
	c.tokenExp = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	c.mu.Unlock()
	return nil
}

// ensureToken exchanges again when the operator token is about to end.
func (c *Client) ensureToken(ctx context.Context) error {
	c.mu.Lock()
	ok := c.token != "" && time.Until(c.tokenExp) > 15*time.Second
	c.mu.Unlock()
	if ok {
		return nil
	}
	return c.exchange(ctx)
}

// UnreachableError is a call that never reached the server.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach writ at %s: %v", e.Server, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is a refusal from the server: a broker error with the wire
// details (the protocol error; the decision that won a race).
type APIError struct {
	Status    int
	Body      opapi.ErrorBody
	Challenge string // WWW-Authenticate, for authentication refusals
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s", e.Body.Code, e.Body.Description)
}

// Unwrap makes the broker code visible to broker.ErrorCode and
// broker.ErrorMessage, so callers handle remote and local errors alike.
func (e *APIError) Unwrap() error {
	code := e.Body.Code
	if code == "" {
		code = broker.EINTERNAL
	}
	return &broker.Error{Code: code, Message: e.Body.Description, Reason: e.Body.Error}
}

// NeedsFreshSignIn reports whether err asks the operator to sign in again
// (RFC 9470 insufficient_user_authentication) before a grave action.
func NeedsFreshSignIn(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Body.Error == "insufficient_user_authentication"
}

// decode reads a JSON answer into out, or the error body into an *APIError.
func decode(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return &UnreachableError{Server: resp.Request.URL.Host, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode, Challenge: resp.Header.Get("WWW-Authenticate")}
		if json.Unmarshal(b, &e.Body) != nil || e.Body.Code == "" {
			e.Body = opapi.ErrorBody{Error: broker.EINTERNAL, Code: broker.EINTERNAL,
				Description: fmt.Sprintf("the server answered %s", resp.Status)}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the server's answer is not the JSON expected: %w", err)
	}
	return nil
}

// call makes one API call. A mutating call carries an Idempotency-Key and
// is sent again, with the same key, when it could not reach the server; a
// refused operator token is exchanged again once.
func (c *Client) call(ctx context.Context, method, path string, in, out any, mutating bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	key := ""
	if mutating {
		key = newKey()
	}
	retried := false
	wait := c.opts.Backoff
	giveUp := time.Now().Add(c.opts.RetryFor)
	for attempt := 0; ; attempt++ {
		if err := c.ensureToken(ctx); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set(opapi.IdempotencyHeader, key)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if (mutating && time.Now().After(giveUp)) || (!mutating && attempt >= 1) {
				return &UnreachableError{Server: c.base, Err: err}
			}
			c.failed.Add(1)
			c.log.Debug("operator API call failed; retrying", "path", path, "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
			wait = min(wait*2, 5*time.Second)
			continue
		}
		err = decode(resp, out)
		resp.Body.Close()
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Body.Error == "invalid_token" && !retried {
			// Expired or from a server that restarted with other keys:
			// exchange the ID token again and repeat once.
			retried = true
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
			continue
		}
		return err
	}
}

func newKey() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Reauthenticate drops the operator token, so the next call exchanges the
// (new) ID token again: after the operator signed in afresh.
func (c *Client) Reauthenticate() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}
