package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterPerClient(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := New(Limit{PerSecond: 1, Burst: 3}, func(c string) (Limit, bool) {
		if c == "vip" {
			return Limit{PerSecond: 10, Burst: 10}, true
		}
		return Limit{}, false
	})
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("a's event %d refused within its burst", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != time.Second {
		t.Fatalf("a past its burst: ok=%v retry after %s, want refused, 1s", ok, wait)
	}
	// A's flood takes nothing from b, and the override applies to vip.
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("b refused while a floods")
	}
	for i := range 10 {
		if ok, _ := l.Allow("vip", now); !ok {
			t.Fatalf("vip's event %d refused within its own burst", i)
		}
	}
	// A refusal costs nothing: one second later a has exactly one event.
	if ok, _ := l.Allow("a", now.Add(time.Second)); !ok {
		t.Fatal("a refused after refilling one event")
	}
	if ok, _ := l.Allow("a", now.Add(time.Second)); ok {
		t.Fatal("a allowed two events after refilling one")
	}
}

func TestLimiterZeroBurstRefuses(t *testing.T) {
	l := New(Limit{PerSecond: 1, Burst: 0}, nil)
	if ok, wait := l.Allow("a", time.Unix(0, 0)); ok || wait <= 0 {
		t.Fatalf("burst 0: ok=%v wait=%s", ok, wait)
	}
}

func TestLimiterForgetsFullBuckets(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := New(Limit{PerSecond: 100, Burst: 1}, nil)
	for i := range maxIdle + 10 {
		l.Allow(fmt.Sprint("c", i), now)
		now = now.Add(time.Second) // every earlier bucket has refilled
	}
	if n := l.Len(); n > maxIdle {
		t.Fatalf("%d buckets held, want at most %d", n, maxIdle)
	}
}

func TestLimiterPeekTakesNothing(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := New(Limit{PerSecond: 2, Burst: 1}, nil)
	for range 3 {
		if ok, _ := l.Peek("a", now); !ok {
			t.Fatal("Peek refused a full bucket")
		}
	}
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("Allow after Peeks refused: Peek took an event")
	}
	ok, wait := l.Peek("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("Peek on an empty bucket: ok=%v wait=%s, want false, 500ms", ok, wait)
	}
}
