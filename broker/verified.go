package broker

import (
	"crypto/sha256"
	"sync"
)

// verifiedCache remembers tokens whose signature has been checked, so each
// is verified once (a signature check costs ~60 µs) and afterwards only
// looked up. Entries are keyed by the SHA-256 of the token's exact bytes,
// so the cache holds no token and a lookup matches only the very token
// that was verified; each remembers the kid that verified it, and a hit
// counts only while that key is still the issuer's (keyed), so a token of
// a key that was removed is refused warm exactly as cold. Bounded: when
// full, an eighth of it goes, arbitrary entries (evictEighth); expiry is
// checked by the callers on every use.
type verifiedCache[C any] struct {
	mu  sync.RWMutex
	max int
	m   map[[sha256.Size]byte]verified[C]
}

type verified[C any] struct {
	claims *C
	kid    string
}

func newVerifiedCache[C any](max int) *verifiedCache[C] {
	return &verifiedCache[C]{max: max, m: make(map[[sha256.Size]byte]verified[C])}
}

// tokenDigest is the cache key of a token. Tokens of ordinary size are
// hashed from a copy on the stack, so a lookup allocates nothing.
func tokenDigest(raw string) [sha256.Size]byte {
	var buf [2048]byte
	if len(raw) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], raw)])
	}
	return sha256.Sum256([]byte(raw))
}

// get returns the claims of the token whose digest is d if it was verified
// by a key keyed still accepts.
func (c *verifiedCache[C]) get(d [sha256.Size]byte, keyed func(kid string) bool) (*C, bool) {
	c.mu.RLock()
	v, ok := c.m[d]
	c.mu.RUnlock()
	if !ok || !keyed(v.kid) {
		return nil, false
	}
	return v.claims, true
}

func (c *verifiedCache[C]) put(d [sha256.Size]byte, kid string, v *C) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[d]; !ok && len(c.m) >= c.max {
		evictEighth(c.m, c.max)
	}
	c.m[d] = verified[C]{claims: v, kid: kid}
}

// holds reports whether kid is one of the issuer's keys, current or
// retired and still published.
func (kr *keyring) holds(kid string) bool {
	_, ok := kr.key(kid)
	return ok
}
