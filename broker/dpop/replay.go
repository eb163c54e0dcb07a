package dpop

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultReplayEntries is the capacity of a ReplayCache made with a
// non-positive size. An entry takes about 80 bytes, so a full default cache
// holds some 42 MB; it lasts for about 8,000 proofs a second at the
// default 65-second retention.
const DefaultReplayEntries = 1 << 19

const replayShards = 64 // a power of two

var errReplay = &Error{Reason: ReasonReplay, Msg: "DPoP proof was already used; make a fresh proof (new jti) for every request"}

// ReplayCache remembers proof identifiers until they expire, to refuse a
// second use (RFC 9449 §11.1). It is in-memory and local to the process;
// replicas behind one public URL need a shared store or sticky routing.
//
// It is sharded by key hash, so concurrent checks rarely share a lock. It
// runs no goroutine: each shard drops its expired entries, oldest first,
// from a min-heap whenever it is written. Memory is bounded: when a shard
// is full of live entries, new proofs are refused (ReasonReplayFull)
// rather than an old entry forgotten, since forgetting one would let that
// proof be replayed. Size the cache for the peak proof rate times the
// verifier's Window+Skew.
type ReplayCache struct {
	perShard int
	shards   [replayShards]replayShard
}

type replayShard struct {
	mu   sync.Mutex
	live map[[16]byte]int64 // key → expiry, unix nanoseconds
	heap []replayEntry      // min-heap on exp; one entry per key in live
	_    [64]byte           // keep neighbouring shards' locks off one cache line
}

type replayEntry struct {
	key [16]byte
	exp int64
}

// NewReplayCache returns a cache holding at most maxEntries live entries;
// maxEntries <= 0 means DefaultReplayEntries.
func NewReplayCache(maxEntries int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	return &ReplayCache{perShard: max(1, (maxEntries+replayShards-1)/replayShards)}
}

// Seen reports whether key was recorded before and has not expired; if not,
// it records key until exp. It also reports true when the cache is full,
// so a caller that refuses on true fails closed. Expiry is judged against
// time.Now; a Verifier uses its own clock.
func (c *ReplayCache) Seen(key string, exp time.Time) bool {
	sum := sha256.Sum256([]byte(key))
	return c.record([16]byte(sum[:16]), exp.UnixNano(), time.Now().UnixNano()) != nil
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

// record adds key until exp, or says why not: errReplay when it is live,
// errReplayFull when its shard has no room. An exp not after now needs no
// remembering.
func (c *ReplayCache) record(key [16]byte, exp, now int64) *Error {
	s := &c.shards[binary.LittleEndian.Uint64(key[:8])&(replayShards-1)]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if _, ok := s.live[key]; ok {
		return errReplay
	}
	if exp <= now {
		return nil
	}
	if len(s.heap) >= c.perShard {
		return errReplayFull
	}
	if s.live == nil {
		s.live = make(map[[16]byte]int64)
	}
	s.live[key] = exp
	s.heap = append(s.heap, replayEntry{key, exp})
	s.up(len(s.heap) - 1)
	return nil
}

// expire drops every entry whose exp is not after now.
func (s *replayShard) expire(now int64) {
	for len(s.heap) > 0 && s.heap[0].exp <= now {
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
