package broker

import (
	"sync"
	"time"
)

// verifiedCache remembers tokens whose signature has been checked, keyed
// by the token's text, so each is verified once (a signature check costs
// ~60 µs) and afterwards only looked up. Bounded: when full, expired
// entries go first, then arbitrary ones, which are simply verified again
// on their next use.
type verifiedCache[C any] struct {
	mu     sync.RWMutex
	max    int
	expiry func(*C) int64 // the claims' exp, in Unix seconds
	m      map[string]*C
}

func newVerifiedCache[C any](max int, expiry func(*C) int64) *verifiedCache[C] {
	return &verifiedCache[C]{max: max, expiry: expiry, m: make(map[string]*C)}
}

func (c *verifiedCache[C]) get(raw string) (*C, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[raw]
	return v, ok
}

func (c *verifiedCache[C]) put(raw string, v *C, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, old := range c.m {
			if c.expiry(old) <= now.Unix() || len(c.m) >= c.max {
				delete(c.m, k)
			}
		}
	}
	c.m[raw] = v
}
