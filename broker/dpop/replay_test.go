package dpop

import (
	"fmt"
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
		if e := c.record(key(i), now+int64((i*37)%100)+1, now); e != nil {
			t.Fatalf("record(%d): %v", i, e)
		}
	}
	if e := c.record(key(5), now+1000, now+10); e != errReplay {
		t.Fatalf("live key: %v, want replay", e)
	}
	// At now+50 every entry with exp <= now+50 has gone, in every shard
	// that is written to; write to all of them.
	for i := range 100 {
		exp := now + int64((i*37)%100) + 1
		e := c.record(key(i), now+1000, now+50)
		if exp <= now+50 && e != nil {
			t.Fatalf("expired key %d (exp %d): %v", i, exp, e)
		}
		if exp > now+50 && e != errReplay {
			t.Fatalf("live key %d (exp %d): %v", i, exp, e)
		}
	}
}

func TestReplayCacheFull(t *testing.T) {
	c := NewReplayCache(replayShards) // one entry per shard
	const now = int64(1_000_000)
	// Find two keys in the same shard.
	a, b := [16]byte{0: 3}, [16]byte{0: 3, 15: 1}
	if e := c.record(a, now+10, now); e != nil {
		t.Fatal(e)
	}
	if e := c.record(b, now+10, now); e != errReplayFull {
		t.Fatalf("full shard: %v, want %s", e, ReasonReplayFull)
	}
	// Once a's entry expires there is room again, and a is forgotten.
	if e := c.record(b, now+20, now+10); e != nil {
		t.Fatalf("after expiry: %v", e)
	}
	if e := c.record(a, now+30, now+11); e != errReplayFull {
		t.Fatalf("a after expiry in a full shard: %v", e)
	}
}

func TestReplayCacheReleasesMemory(t *testing.T) {
	c := NewReplayCache(1 << 20)
	s := &c.shards[0]
	for i := range 10000 {
		if e := c.record([16]byte{0: 0, 8: byte(i), 9: byte(i >> 8)}, 100, 1); e != nil {
			t.Fatal(e)
		}
	}
	if len(s.heap) != 10000 {
		t.Fatalf("shard 0 holds %d", len(s.heap))
	}
	if e := c.record([16]byte{0: 0, 10: 1}, 300, 200); e != nil {
		t.Fatal(e)
	}
	if len(s.heap) != 1 || cap(s.heap) > 4096 || len(s.live) != 1 {
		t.Fatalf("after expiry: heap %d/%d live %d", len(s.heap), cap(s.heap), len(s.live))
	}
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
