package operator

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/writhq/writ/broker"
)

// browserTimeout bounds a browser sign-in nobody finishes.
const browserTimeout = 10 * time.Minute

// ErrBrowserTimeout: the browser sign-in was not finished in time.
var ErrBrowserTimeout = &broker.Error{Code: broker.EEXPIRED, Message: "the browser sign-in was not finished within 10 minutes"}

// BrowserAuth is a started authorization code flow: the URL to open, and a
// loopback listener waiting for the provider to send the browser back.
type BrowserAuth struct {
	// URL is the authorization request; print it, the browser may not open.
	URL string
	// RedirectURL is the loopback callback, http://127.0.0.1:port/callback.
	RedirectURL string
	// Opened reports whether a browser was launched.
	Opened bool

	flow *browserFlow
}

type browserResult struct {
	session *Session
	err     error
}

// browserFlow owns the loopback server of one sign-in.
type browserFlow struct {
	client   *Client
	provider *oidc.Provider
	oauth    *oauth2.Config
	ctx      context.Context // the flow's: cancelling it stops everything
	state    string
	nonce    string
	verifier string

	srv      *http.Server
	ln       net.Listener
	stop     func() bool
	done     atomic.Bool // a callback with the right state has been taken
	result   chan browserResult
	shutOnce sync.Once
}

// StartBrowser discovers the provider, listens on 127.0.0.1 on an ephemeral
// port (RFC 8252 §7.3, §8.3), builds the authorization request with PKCE S256,
// state and nonce, and opens it in a browser when one is available. The
// listener lives until WaitBrowser returns or ctx ends.
func (c *Client) StartBrowser(ctx context.Context) (*BrowserAuth, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	if p.Endpoint().AuthURL == "" {
		return nil, fmt.Errorf("operator sign-in: the provider at %s has no authorization_endpoint", c.cfg.Issuer)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("operator sign-in: listen on loopback for the browser redirect: %w", err)
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	f := &browserFlow{
		client:   c,
		provider: p,
		oauth:    c.oauth2Config(p, redirect),
		ctx:      ctx,
		state:    randomToken(),
		nonce:    randomToken(),
		verifier: oauth2.GenerateVerifier(),
		result:   make(chan browserResult, 1),
		ln:       ln,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", f.callback)
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.cfg.Logger.Warn("browser sign-in listener stopped", "error", err)
		}
	}()
	f.stop = context.AfterFunc(ctx, f.shutdown)

	ba := &BrowserAuth{
		URL:         f.oauth.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)),
		RedirectURL: redirect,
		flow:        f,
	}
	if err := c.cfg.OpenBrowser(ba.URL); err != nil {
		c.cfg.Logger.Debug("no browser opened; the URL is shown instead", "reason", err)
	} else {
		ba.Opened = true
	}
	return ba, nil
}

// WaitBrowser waits for the browser to come back, exchanges the code with the
// PKCE verifier and verifies the ID token and its nonce. It stops the
// listener before it returns.
func (c *Client) WaitBrowser(ctx context.Context, ba *BrowserAuth) (*Session, error) {
	if ba == nil || ba.flow == nil {
		return nil, errors.New("operator sign-in: WaitBrowser needs the BrowserAuth from StartBrowser")
	}
	f := ba.flow
	defer f.shutdown()
	timer := time.NewTimer(browserTimeout)
	defer timer.Stop()
	select {
	case res := <-f.result:
		if res.err != nil {
			return nil, res.err
		}
		c.remember(res.session)
		return res.session, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	case <-timer.C:
		return nil, ErrBrowserTimeout
	}
}

func (f *browserFlow) shutdown() {
	f.shutOnce.Do(func() {
		f.stop()
		// Let the callback's page reach the browser, then stop.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			_ = f.srv.Close()
		}
		// Serve may not have started yet, and then Shutdown has no
		// listener to close: close it here, so the port is shut when
		// the sign-in ends.
		_ = f.ln.Close()
	})
}

// callback receives the provider's redirect (RFC 6749 §4.1.2).
func (f *browserFlow) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.state)) != 1 {
		// Not our request (a stale tab, or someone else's link): refuse it
		// and keep waiting for the real one.
		f.client.cfg.Logger.Warn("browser sign-in: callback with a state this sign-in did not send")
		writePage(w, http.StatusBadRequest, "Not the sign-in writ is waiting for",
			"This link does not belong to the sign-in your terminal started. Start again from the terminal.")
		return
	}
	if !f.done.CompareAndSwap(false, true) {
		writePage(w, http.StatusConflict, "Sign-in already finished", "Return to your terminal.")
		return
	}
	s, err := f.complete(q.Get("code"), q.Get("error"), q.Get("error_description"))
	if err != nil {
		writePage(w, http.StatusForbidden, "Sign-in failed", err.Error()+"\n\nReturn to your terminal to try again.")
	} else {
		writePage(w, http.StatusOK, "Signed in to writ",
			"Signed in as "+s.Operator.Display()+". You can close this tab and return to your terminal.")
	}
	f.result <- browserResult{session: s, err: err}
}

func (f *browserFlow) complete(code, oauthErr, desc string) (*Session, error) {
	c := f.client
	switch {
	case oauthErr == "access_denied":
		return nil, ErrAccessDenied
	case oauthErr != "":
		if desc != "" {
			oauthErr += ": " + desc
		}
		return nil, fmt.Errorf("operator sign-in: refused by %s: %s", c.cfg.Issuer, oauthErr)
	case code == "":
		return nil, errors.New("operator sign-in: the provider sent the browser back without a code")
	}
	tok, err := f.oauth.Exchange(c.httpContext(f.ctx), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return nil, c.flowError(f.ctx, "code exchange", err)
	}
	return c.sessionFromToken(f.ctx, f.provider, tok, verifyCheck{nonce: f.nonce})
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>writ: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.5}p{white-space:pre-wrap}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// writePage answers the browser with a small page; the message is escaped.
func writePage(w http.ResponseWriter, status int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}

// randomToken is 256 bits of randomness, base64url: state and nonce.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
