package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// feedToken is the access token a guard with Config.FeedAccessToken
// presents to writ's feed endpoints: got with the client credentials grant
// (RFC 6749 §4.4) and the guard's client assertion, and kept until shortly
// before it expires. writ checks its signature once and then remembers it,
// where a fresh client assertion per long poll costs writ a signature
// check per poll: with many guards, most of what a revocation costs it.
type feedToken struct {
	mu       sync.Mutex
	tokenURL string
	token    string
	renewAt  time.Time
	// retryAt holds off asking again after writ did not grant a token;
	// until then the guard authenticates each call with an assertion.
	retryAt time.Time
}

// feedTokenRetry is how long a guard whose request for a feed token
// failed authenticates with assertions before asking again.
const feedTokenRetry = time.Minute

// feedScopes are the scopes a guard's feed token carries: it manages its
// stream and polls it.
const feedScopes = "ssf.read ssf.manage"

// feedBearer returns the feed token to present, getting one when there is
// none or it is about to expire, or "" when the guard should fall back to
// a client assertion.
func (g *Guard) feedBearer(ctx context.Context) string {
	t := &g.feedTok
	t.mu.Lock()
	defer t.mu.Unlock()
	now := g.now()
	if t.token != "" && now.Before(t.renewAt) {
		return t.token
	}
	if now.Before(t.retryAt) {
		return ""
	}
	tok, life, err := g.fetchFeedToken(ctx)
	if err != nil {
		t.token, t.retryAt = "", now.Add(feedTokenRetry)
		g.log.Warn("cannot get an access token for the revocation feed; authenticating each call with a client assertion", "err", err)
		return ""
	}
	// Renewed at three quarters of its life, so a slow renewal or a little
	// clock skew never presents an expired token.
	t.token, t.renewAt = tok, now.Add(life*3/4)
	return tok
}

// dropFeedToken forgets a token the feed refused (its key retired, say, or
// a transmitter that grants tokens its feed does not take) and, as when
// writ grants none, authenticates with assertions for feedTokenRetry
// before asking for another: a feed that refuses every token it is given
// must not cost a token request and a refusal per call.
func (g *Guard) dropFeedToken(token string) {
	t := &g.feedTok
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == token {
		t.token, t.retryAt = "", g.now().Add(feedTokenRetry)
	}
}

// fetchFeedToken asks writ's token endpoint for a feed token.
func (g *Guard) fetchFeedToken(ctx context.Context) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if g.feedTok.tokenURL == "" {
		u, err := g.discoverTokenEndpoint(ctx)
		if err != nil {
			return "", 0, err
		}
		g.feedTok.tokenURL = u
	}
	a, err := g.cfg.ClientAssertion(ctx, g.cfg.Issuer)
	if err != nil {
		return "", 0, fmt.Errorf("make a client assertion: %w", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {feedScopes},
		"client_assertion_type": {AssertionTypeJWTBearer}, "client_assertion": {a}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.feedTok.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Accept", "application/json")
	resp, err := g.do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
	}
	_ = json.Unmarshal(b, &out)
	switch {
	case resp.StatusCode != http.StatusOK:
		return "", 0, fmt.Errorf("token request: writ answered %d %s", resp.StatusCode, quoteValue(out.Error))
	case out.AccessToken == "" || !strings.EqualFold(out.TokenType, "Bearer"):
		return "", 0, errors.New("token request: the answer holds no Bearer access token")
	case out.ExpiresIn < 1 || out.ExpiresIn > 24*3600:
		return "", 0, fmt.Errorf("token request: expires_in %d is out of range", out.ExpiresIn)
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// discoverTokenEndpoint reads writ's authorization server metadata (RFC
// 8414 §3) for its token endpoint.
func (g *Guard) discoverTokenEndpoint(ctx context.Context) (string, error) {
	u, err := url.Parse(g.cfg.Issuer)
	if err != nil {
		return "", err
	}
	wk := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/")
	// The document is public: asked for without the guard's credentials
	// (other than Config.Authenticate's), which it is needed to get.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wk, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	if g.cfg.Authenticate != nil {
		if err := g.cfg.Authenticate(req); err != nil {
			return "", fmt.Errorf("authenticate to writ: %w", err)
		}
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("authorization server metadata: %w", err)
	}
	defer resp.Body.Close()
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case err != nil:
		return "", fmt.Errorf("authorization server metadata: %w", err)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("authorization server metadata: writ answered %d", resp.StatusCode)
	case json.Unmarshal(b, &meta) != nil:
		return "", errors.New("authorization server metadata: malformed answer")
	case meta.Issuer != g.cfg.Issuer:
		return "", fmt.Errorf("authorization server metadata: issuer %q is not %q", meta.Issuer, g.cfg.Issuer)
	}
	if err := checkURL(meta.TokenEndpoint); err != nil {
		return "", fmt.Errorf("authorization server metadata: token_endpoint: %w", err)
	}
	return meta.TokenEndpoint, nil
}
