package dpop

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReplayCacheSeen(t *testing.T) {
	c := NewReplayCache(0)
	exp := time.Now().Add(time.Minute)
	if c.Seen("a", exp) {
		t.Fatal("first Seen(a) = true")
	}
	if !c.Seen("a", exp) {
		t.Fatal("second Seen(a) = false")
	}
	if c.Seen("b", exp) {
		t.Fatal("Seen(b) = true")
	}
	// An expiry already past needs no remembering.
	// An expiry already past needs no remembering: asking twice is never a replay.
	for range 2 {
		if c.Seen("old", time.Now().Add(-time.Second)) {
			t.Fatal("Seen with a past expiry = true")
		}
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

func TestReplayCacheExpiry(t *testing.T) {
	c := NewReplayCache(0)
	key := func(i int) [16]byte { return [16]byte{byte(i), byte(i >> 8), 1} }
	const now = int64(1_000_000)
	// Out-of-order expiries: the heap must still drop them in order.
	for i := range 100 {
		if e := c.record(0, key(i), now+int64((i*37)%100)+1, now); e != nil {
			t.Fatalf("record(%d): %v", i, e)
		}
	}
	if e := c.record(0, key(5), now+1000, now+10); e != errReplay {
		t.Fatalf("live key: %v, want replay", e)
	}
	// At now+50 every entry with exp <= now+50 has gone, in every shard
	// that is written to; write to all of them.
	for i := range 100 {
		exp := now + int64((i*37)%100) + 1
		e := c.record(0, key(i), now+1000, now+50)
		if exp <= now+50 && e != nil {
			t.Fatalf("expired key %d (exp %d): %v", i, exp, e)
		}
		if exp > now+50 && e != errReplay {
			t.Fatalf("live key %d (exp %d): %v", i, exp, e)
		}
	}
}

// keysInShard returns n distinct keys that c places in one shard, and
// that shard.
func keysInShard(c *ReplayCache, n int) ([][16]byte, *replayShard) {
	want := c.shardOf([16]byte{})
	var out [][16]byte
	for i := 1; len(out) < n; i++ {
		k := [16]byte{0: byte(i), 1: byte(i >> 8), 2: byte(i >> 16), 15: 7}
		if c.shardOf(k) == want {
			out = append(out, k)
		}
	}
	return out, want
}

func (c *ReplayCache) shardOf(k [16]byte) *replayShard {
	return &c.shards[maphash.Comparable(c.seed, k)&(replayShards-1)]
}

func TestReplayCacheFull(t *testing.T) {
	c := NewReplayCache(replayShards) // one entry per shard
	const now = int64(1_000_000)
	ks, _ := keysInShard(c, 2)
	a, b := ks[0], ks[1]
	if e := c.record(0, a, now+10, now); e != nil {
		t.Fatal(e)
	}
	if e := c.record(0, b, now+10, now); e != errReplayFull {
		t.Fatalf("full shard: %v, want %s", e, ReasonReplayFull)
	}
	// Once a's entry expires there is room again, and a is forgotten.
	if e := c.record(0, b, now+20, now+10); e != nil {
		t.Fatalf("after expiry: %v", e)
	}
	if e := c.record(0, a, now+30, now+11); e != errReplayFull {
		t.Fatalf("a after expiry in a full shard: %v", e)
	}
}

func TestReplayCacheReleasesMemory(t *testing.T) {
	c := NewReplayCache(1 << 20)
	ks, s := keysInShard(c, 10001)
	for _, k := range ks[:10000] {
		if e := c.record(0, k, 100, 1); e != nil {
			t.Fatal(e)
		}
	}
	if len(s.heap) != 10000 {
		t.Fatalf("shard holds %d", len(s.heap))
	}
	if e := c.record(0, ks[10000], 300, 200); e != nil {
		t.Fatal(e)
	}
	if len(s.heap) != 1 || cap(s.heap) > 4096 || len(s.live) != 1 {
		t.Fatalf("after expiry: heap %d/%d live %d", len(s.heap), cap(s.heap), len(s.live))
	}
}

// The attack of issue 10: one client floods the cache with fresh
// identifiers. It is refused once it holds its quota (replay_quota, "slow
// down"), and every other client's fresh identifier is still accepted,
// wherever it lands.
func TestReplayCacheFloodDoesNotRefuseOthers(t *testing.T) {
	const capacity = replayShards * 32
	c := NewReplayCacheQuota(capacity, 64)
	exp := time.Now().Add(time.Hour)
	accepted := 0
	for i := range capacity * 4 {
		err := c.Record("flooder", fmt.Sprint("jti-", i), exp)
		if err == nil {
			accepted++
			continue
		}
		if Reason(err) != ReasonReplayQuota {
			t.Fatalf("flood entry %d: %v, want reason %s", i, err, ReasonReplayQuota)
		}
	}
	if accepted != 64 {
		t.Fatalf("flooder had %d entries accepted, want its quota of 64", accepted)
	}
	for cl := range 8 {
		for i := range 64 {
			if err := c.Record(fmt.Sprint("client-", cl), fmt.Sprint("jti-", i), exp); err != nil {
				t.Fatalf("client-%d jti-%d during the flood: %v", cl, i, err)
			}
		}
	}
	// A replay is still a replay, whatever the quota.
	if err := c.Record("client-3", "jti-5", exp); Reason(err) != ReasonReplay {
		t.Fatalf("replayed entry: %v, want reason %s", err, ReasonReplay)
	}
}

// A client's quota frees up as its entries expire, even in shards nobody
// writes to.
func TestReplayCacheQuotaFreesOnExpiry(t *testing.T) {
	c := NewReplayCacheQuota(1<<12, 4)
	const now = int64(1_000_000)
	cl := c.clientHash("a")
	for i := range 4 {
		if e := c.record(cl, [16]byte{0: byte(i), 9: 1}, now+10, now); e != nil {
			t.Fatal(e)
		}
	}
	if e := c.record(cl, [16]byte{0: 99}, now+20, now+5); e != errReplayQuota {
		t.Fatalf("over quota: %v, want %s", e, ReasonReplayQuota)
	}
	if e := c.record(cl, [16]byte{0: 99}, now+30, now+10); e != nil {
		t.Fatalf("after the quota's entries expired: %v", e)
	}
}

// Shards are chosen by a keyed hash: two caches place the same keys
// differently, so a client cannot aim at one shard.
func TestReplayCacheShardIsKeyed(t *testing.T) {
	a, b := NewReplayCache(0), NewReplayCache(0)
	for i := range 64 {
		k := [16]byte{0: byte(i)}
		ia := maphash.Comparable(a.seed, k) & (replayShards - 1)
		ib := maphash.Comparable(b.seed, k) & (replayShards - 1)
		if ia != ib {
			return
		}
	}
	t.Fatal("64 keys fell in the same shards under two seeds")
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(0)
	exp := time.Now().Add(time.Minute)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				// Every key is offered by two goroutines; exactly one wins.
				if !c.Seen(fmt.Sprint(i, "/", g/2), exp) {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := fresh.Load(); got != 4*2000 {
		t.Fatalf("%d first uses, want %d", got, 4*2000)
	}
}
