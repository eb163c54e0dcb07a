package dpop

import (
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultReplayEntries is the capacity of a ReplayCache made with a
// non-positive size. An entry takes about 90 bytes, so a full default cache
// holds some 47 MB; it lasts for about 8,000 proofs a second at the
// default 65-second retention.
const DefaultReplayEntries = 1 << 19

// DefaultClientShare is the fraction (1/DefaultClientShare) of a cache's
// capacity that one client may hold when no quota is given: one client's
// flood fills its own quota long before it could fill a shard.
const DefaultClientShare = 16

const replayShards = 64 // a power of two

var errReplay = &Error{Reason: ReasonReplay, Msg: "DPoP proof was already used; make a fresh proof (new jti) for every request"}

// ReplayCache remembers proof identifiers until they expire, to refuse a
// second use (RFC 9449 §11.1). It is in-memory and local to the process;
// replicas behind one public URL need a shared store or sticky routing.
//
// It is sharded, so concurrent checks rarely share a lock. The shard of an
// entry is chosen by a hash keyed with a secret seed drawn when the cache
// is made, so a client cannot aim its identifiers at one shard. It runs no
// goroutine: each shard drops its expired entries, oldest first, from a
// min-heap whenever it is written.
//
// Memory is bounded twice. Each client (the caller names it: an
// authenticated client id, or the key a token is bound to) may hold at
// most a quota of live entries; past it, its new entries are refused with
// ReasonReplayQuota, which callers answer "slow down", and no other client
// is affected. When a shard is full of live entries, new entries are
// refused (ReasonReplayFull) rather than an old entry forgotten, since
// forgetting one would let that proof be replayed. Size the cache for the
// peak proof rate times the verifier's Window+Skew.
type ReplayCache struct {
	seed      maphash.Seed
	perShard  int
	perClient int
	shards    [replayShards]replayShard
	clients   [replayShards]clientShard
}

type replayShard struct {
	mu   sync.Mutex
	live map[[16]byte]int64 // key → expiry, unix nanoseconds
	heap []replayEntry      // min-heap on exp; one entry per key in live
	_    [64]byte           // keep neighbouring shards' locks off one cache line
}

// clientShard counts the live entries of the clients hashed to it. Its lock
// is taken only while holding an entry shard's lock, never the other way.
type clientShard struct {
	mu sync.Mutex
	n  map[uint64]int // client hash → live entries
	_  [64]byte
}

type replayEntry struct {
	key    [16]byte
	client uint64 // 0: counted against no client
	exp    int64
}

// NewReplayCache returns a cache holding at most maxEntries live entries
// (maxEntries <= 0 means DefaultReplayEntries), of which one client may
// hold 1/DefaultClientShare.
func NewReplayCache(maxEntries int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	return NewReplayCacheQuota(maxEntries, max(1, maxEntries/DefaultClientShare))
}

// NewReplayCacheQuota returns a cache holding at most maxEntries live
// entries (DefaultReplayEntries when <= 0), of which one client may hold
// perClient (1/DefaultClientShare of maxEntries when <= 0).
func NewReplayCacheQuota(maxEntries, perClient int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	if perClient <= 0 {
		perClient = max(1, maxEntries/DefaultClientShare)
	}
	return &ReplayCache{
		seed:      maphash.MakeSeed(),
		perShard:  max(1, (maxEntries+replayShards-1)/replayShards),
		perClient: perClient,
	}
}

// ClientQuota returns how many live entries one client may hold.
func (c *ReplayCache) ClientQuota() int { return c.perClient }

// Seen reports whether key was recorded before and has not expired; if not,
// it records key until exp. It also reports true when the cache is full,
// so a caller that refuses on true fails closed. The entry counts against
// no client's quota; use Record for entries a client chose. Expiry is
// judged against time.Now; a Verifier uses its own clock.
func (c *ReplayCache) Seen(key string, exp time.Time) bool {
	sum := sha256.Sum256([]byte(key))
	return c.record(0, [16]byte(sum[:16]), exp.UnixNano(), time.Now().UnixNano()) != nil
}

// Record records (client, key) until exp. It returns nil when key
// is new, or an *Error: ReasonReplay when key is live, ReasonReplayQuota
// when client already holds its quota of live entries (answer "slow down":
// the quota frees up as its entries expire), ReasonReplayFull when the
// cache has no room. Expiry is judged against time.Now.
func (c *ReplayCache) Record(client, key string, exp time.Time) error {
	sum := sha256.Sum256([]byte(client + "\x00" + key))
	if e := c.record(c.clientHash(client), [16]byte(sum[:16]), exp.UnixNano(), time.Now().UnixNano()); e != nil {
		return e
	}
	return nil
}

// clientHash names client in the cache: a keyed hash, never 0 (which means
// "no client").
func (c *ReplayCache) clientHash(client string) uint64 {
	return maphash.String(c.seed, client) | 1
}

// Len returns the number of entries held, live or not yet swept.
func (c *ReplayCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.heap)
		s.mu.Unlock()
	}
	return n
}

// record adds key for client until exp, or says why not: errReplay when
// it is live, errReplayQuota when client holds its quota, errReplayFull
// when its shard has no room. An exp not after now needs no remembering.
func (c *ReplayCache) record(client uint64, key [16]byte, exp, now int64) *Error {
	e := c.tryRecord(client, key, exp, now)
	if e == errReplayQuota {
		// Shards are swept only when written, so the count may include
		// entries that expired in quiet shards: sweep them all and look
		// again before refusing.
		c.sweep(now)
		e = c.tryRecord(client, key, exp, now)
	}
	return e
}

func (c *ReplayCache) tryRecord(client uint64, key [16]byte, exp, now int64) *Error {
	s := &c.shards[maphash.Comparable(c.seed, key)&(replayShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	c.expire(s, now)
	if _, ok := s.live[key]; ok {
		return errReplay
	}
	if exp <= now {
		return nil
	}
	if len(s.heap) >= c.perShard {
		return errReplayFull
	}
	if client != 0 && !c.take(client) {
		return errReplayQuota
	}
	if s.live == nil {
		s.live = make(map[[16]byte]int64)
	}
	s.live[key] = exp
	s.heap = append(s.heap, replayEntry{key, client, exp})
	s.up(len(s.heap) - 1)
	return nil
}

// take counts one more live entry for client, if its quota allows.
func (c *ReplayCache) take(client uint64) bool {
	cs := &c.clients[client>>58]
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.n[client] >= c.perClient {
		return false
	}
	if cs.n == nil {
		cs.n = make(map[uint64]int)
	}
	cs.n[client]++
	return true
}

// release counts one live entry of client less.
func (c *ReplayCache) release(client uint64) {
	cs := &c.clients[client>>58]
	cs.mu.Lock()
	if n := cs.n[client]; n <= 1 {
		delete(cs.n, client)
	} else {
		cs.n[client] = n - 1
	}
	cs.mu.Unlock()
}

// sweep drops the expired entries of every shard.
func (c *ReplayCache) sweep(now int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.expire(s, now)
		s.mu.Unlock()
	}
}

// expire drops every entry of s whose exp is not after now; s is locked.
func (c *ReplayCache) expire(s *replayShard, now int64) {
	for len(s.heap) > 0 && s.heap[0].exp <= now {
		if cl := s.heap[0].client; cl != 0 {
			c.release(cl)
		}
		delete(s.live, s.heap[0].key)
		last := len(s.heap) - 1
		s.heap[0] = s.heap[last]
		s.heap = s.heap[:last]
		s.down(0)
	}
	// Maps and slices keep their peak size; after a burst has drained, let
	// the garbage collector have it back.
	if len(s.heap) == 0 && cap(s.heap) > 4096 {
		s.heap, s.live = nil, nil
	}
}

func (s *replayShard) up(i int) {
	h := s.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].exp <= h[i].exp {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *replayShard) down(i int) {
	h := s.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].exp < h[l].exp {
			m = r
		}
		if h[i].exp <= h[m].exp {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
