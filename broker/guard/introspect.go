package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const formType = "application/x-www-form-urlencoded"

// introspectCache remembers introspection answers briefly, so a guard that
// has fallen back to introspection does not ask writ on every request.
type introspectCache struct {
	mu  sync.Mutex
	m   map[string]introspected
	max int
}

type introspected struct {
	active bool
	until  time.Time
}

// introspect asks writ whether a token is active (RFC 7662), for a guard
// whose revocation feed is stale.
func (g *Guard) introspect(ctx context.Context, e *entry) (bool, error) {
	now := g.now()
	c := &g.introspected
	c.mu.Lock()
	if r, ok := c.m[e.jti]; ok && now.Before(r.until) {
		c.mu.Unlock()
		return r.active, nil
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	form := url.Values{"token": {e.raw}, "token_type_hint": {"access_token"}}
	if g.cfg.ClientAssertion != nil {
		a, err := g.cfg.ClientAssertion(ctx, g.cfg.Issuer)
		if err != nil {
			return false, fmt.Errorf("make a client assertion: %w", err)
		}
		form.Set("client_assertion_type", AssertionTypeJWTBearer)
		form.Set("client_assertion", a)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Accept", "application/json")
	resp, err := g.do(req)
	if err != nil {
		return false, fmt.Errorf("introspect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("introspect: writ answered %s", resp.Status)
	}
	var out struct {
		Active bool `json:"active"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || json.Unmarshal(b, &out) != nil {
		return false, fmt.Errorf("introspect: malformed answer")
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k, r := range c.m {
			if !now.Before(r.until) || len(c.m) >= c.max {
				delete(c.m, k)
			}
			if len(c.m) < c.max*3/4 {
				break
			}
		}
	}
	c.m[e.jti] = introspected{active: out.Active, until: now.Add(g.cfg.IntrospectionTTL)}
	c.mu.Unlock()
	return out.Active, nil
}
