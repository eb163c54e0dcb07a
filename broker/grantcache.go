package broker

import (
	"context"
	"sync"
)

// grantCache keeps the grants introspection reads, decoded, so a resource
// server asking about the same token again and again costs no store read
// and no JSON decoding (they were most of an introspection's CPU). It is
// only a copy of the store and never the authority on a grant's state:
//
//   - every write transaction made through the Service's store that writes
//     a grant drops that grant's entry once the transaction has returned
//     (grantWatch), before the write is acknowledged to anyone;
//   - a read that may have raced with such a write does not insert what it
//     read: each invalidation moves the generation, and put refuses a grant
//     read under an older one;
//   - liveness is still judged on every call by StatusOf, against the
//     issuer and agent epochs and the clock, which the cache does not hold.
//
// Entries are shared: callers must not modify a grant they get from it.
type grantCache struct {
	mu  sync.RWMutex
	gen uint64
	max int
	m   map[string]*Grant
}

// maxCachedGrants bounds the cache: a decoded grant is about a kilobyte,
// and only grants whose tokens are being introspected, or whose uses a
// resource server reports, are kept.
const maxCachedGrants = 16_384

func newGrantCache(max int) *grantCache {
	return &grantCache{max: max, m: make(map[string]*Grant)}
}

// generation returns the current generation; read it before reading a
// grant from the store, and pass it to put.
func (c *grantCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *grantCache) get(id string) (*Grant, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g, ok := c.m[id]
	return g, ok
}

// put keeps g, read from the store after generation returned gen, unless a
// grant write has returned since: then g may be older than the store.
func (c *grantCache) put(g *Grant, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[g.ID]; !ok && len(c.m) >= c.max {
		evictEighth(c.m, c.max)
	}
	c.m[g.ID] = g
}

// evictEighth removes arbitrary entries (map order is random) until m is
// an eighth below max: a full cache pays for one pass per max/8 new
// entries, not one per entry. An evicted entry is simply read or verified
// again on its next use.
func evictEighth[K comparable, V any](m map[K]V, max int) {
	target := max - max/8 - 1
	for k := range m {
		if len(m) <= target {
			return
		}
		delete(m, k)
	}
}

// drop forgets the grants ids and moves the generation, so a read that
// started before the write that changed them cannot put them back.
func (c *grantCache) drop(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.m, id)
	}
	c.gen++
}

// watchGrants returns st with every write transaction watched: the grants
// it writes are dropped from cache when the transaction returns. Grants
// written to the store other than through the returned Store are not seen.
func watchGrants(st Store, cache *grantCache) Store {
	return grantWatch{Store: st, cache: cache}
}

type grantWatch struct {
	Store
	cache *grantCache
}

func (w grantWatch) Update(ctx context.Context, fn func(Tx) error) error {
	tx := &grantWatchTx{}
	defer func() { w.dropWritten(tx.wrote) }()
	return w.Store.Update(ctx, func(inner Tx) error {
		tx.Tx = inner
		return fn(tx)
	})
}

// Batch may run fn more than once, in a transaction shared with other
// callers; every grant any run wrote is dropped when the batch returns,
// that is after the shared transaction committed or failed.
func (w grantWatch) Batch(ctx context.Context, fn func(Tx) error) error {
	tx := &grantWatchTx{}
	defer func() { w.dropWritten(tx.wrote) }()
	return w.Store.Batch(ctx, func(inner Tx) error {
		tx.Tx = inner
		return fn(tx)
	})
}

func (w grantWatch) dropWritten(ids []string) {
	if len(ids) > 0 {
		w.cache.drop(ids)
	}
}

// grantWatchTx notes the id of every grant written through it. The id is
// noted before the write, so a write that fails is dropped all the same.
// PutGrant is the only way a transaction writes a grant; a new one (a
// method that changes part of a grant record) must be watched here too,
// or introspection would answer from the grant as it was.
// TestIntrospectionCacheAttacks compares warm answers with cold ones after
// every operation that changes a grant.
type grantWatchTx struct {
	Tx
	wrote []string
}

func (t *grantWatchTx) PutGrant(g *Grant) error {
	if g != nil {
		t.wrote = append(t.wrote, g.ID)
	}
	return t.Tx.PutGrant(g)
}
