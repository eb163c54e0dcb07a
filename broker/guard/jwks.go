package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWKS cache bounds: a Cache-Control max-age is honoured within them.
const (
	jwksDefaultTTL = 5 * time.Minute
	jwksMinTTL     = 30 * time.Second
	jwksMaxTTL     = 24 * time.Hour
	maxJWKSBody    = 1 << 20
)

var errUnknownKey = errors.New("no such key in writ's JWKS")

// keySet is one fetched JWKS.
type keySet struct {
	keys    map[string]*jose.JSONWebKey
	expires time.Time
}

// jwksCache holds writ's signing keys. Lookups are lock-free; a kid it has
// not seen triggers a refetch, at most one per minRefetch, so a flood of
// tokens with made-up kids cannot make the guard hammer writ.
type jwksCache struct {
	g          *Guard
	url        atomic.Pointer[string]
	set        atomic.Pointer[keySet]
	minRefetch time.Duration

	mu        sync.Mutex // serialises fetches
	lastFetch time.Time
	fetches   atomic.Int64
}

// key returns the key with kid, refetching the JWKS when kid is unknown and
// the rate limit allows.
func (c *jwksCache) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	return c.keyWithin(ctx, kid, c.minRefetch)
}

// feedRefetch bounds JWKS fetches prompted by SETs. The feed is writ's own
// authenticated answer, so an unknown kid there means writ rotated its key:
// a refetch is worth it after a second, not after minRefetch.
const feedRefetch = time.Second

// feedKey returns the key a SET from the revocation feed names.
func (c *jwksCache) feedKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	return c.keyWithin(ctx, kid, feedRefetch)
}

// keyWithin is key with a given least time between fetches.
func (c *jwksCache) keyWithin(ctx context.Context, kid string, minRefetch time.Duration) (*jose.JSONWebKey, error) {
	if ks := c.set.Load(); ks != nil {
		if k, ok := ks.keys[kid]; ok {
			return k, nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks := c.set.Load(); ks != nil {
		if k, ok := ks.keys[kid]; ok {
			return k, nil // fetched while we waited
		}
	}
	now := c.g.now()
	if !c.lastFetch.IsZero() && now.Sub(c.lastFetch) < minRefetch {
		return nil, errUnknownKey
	}
	if err := c.fetchLocked(ctx); err != nil {
		return nil, err
	}
	if k, ok := c.set.Load().keys[kid]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

// refreshIfDue refetches the JWKS when its max-age has passed; the old keys
// stay in use until a fetch succeeds.
func (c *jwksCache) refreshIfDue(ctx context.Context) error {
	ks := c.set.Load()
	if ks != nil && c.g.now().Before(ks.expires) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ks = c.set.Load()
	if ks != nil && c.g.now().Before(ks.expires) {
		return nil
	}
	err := c.fetchLocked(ctx)
	if err != nil && ks != nil {
		// Keep the keys we have and try again later, not every second.
		c.set.Store(&keySet{keys: ks.keys, expires: c.g.now().Add(jwksMinTTL)})
	}
	return err
}

func (c *jwksCache) fetchLocked(ctx context.Context) error {
	c.lastFetch = c.g.now()
	c.fetches.Add(1)
	url := *c.url.Load()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.g.do(req)
	if err != nil {
		return fmt.Errorf("fetch writ's JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch writ's JWKS: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody))
	if err != nil {
		return fmt.Errorf("read writ's JWKS: %w", err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return err
	}
	ttl := min(max(maxAge(resp.Header.Get("Cache-Control")), jwksMinTTL), jwksMaxTTL)
	c.set.Store(&keySet{keys: keys, expires: c.g.now().Add(ttl)})
	return nil
}

// parseJWKS reads a JWKS, skipping keys it cannot use (unknown kty, private
// members, not for signing, no kid) rather than refusing the set (RFC 7517 §5).
func parseJWKS(body []byte) (map[string]*jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("writ's JWKS is not a JWK set: %w", err)
	}
	keys := make(map[string]*jose.JSONWebKey, len(raw.Keys))
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || k.KeyID == "" || !k.IsPublic() || !k.Valid() {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		keys[k.KeyID] = &k
	}
	return keys, nil
}

// maxAge returns the max-age of a Cache-Control value, the default when it
// has none, and zero for no-store or no-cache.
func maxAge(cc string) time.Duration {
	d := jwksDefaultTTL
	for _, part := range strings.Split(cc, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age", "s-maxage":
			if n, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil && n >= 0 {
				d = time.Duration(n) * time.Second
			}
		}
	}
	return d
}
