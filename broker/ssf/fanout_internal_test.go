package ssf

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// feedBroker is a Broker with a feed in memory and a signer that counts.
type feedBroker struct {
	Broker // nil: the methods below are the only ones the tail uses
	feed   []broker.Signal
	signed atomic.Int64
	read   atomic.Int64 // signals Signals has returned
}

func (b *feedBroker) Now() time.Time        { return time.Unix(1700000000, 0) }
func (b *feedBroker) LastSignalSeq() uint64 { return uint64(len(b.feed)) }
func (b *feedBroker) Signals(_ context.Context, after uint64, max int) ([]broker.Signal, error) {
	if after >= uint64(len(b.feed)) {
		return nil, nil
	}
	out := b.feed[after:]
	if len(out) > max {
		out = out[:max]
	}
	b.read.Add(int64(len(out)))
	return append([]broker.Signal(nil), out...), nil
}
func (b *feedBroker) Sign(typ string, claims any) (string, error) {
	n := b.signed.Add(1)
	c := claims.(*setClaims)
	return fmt.Sprintf("%s|%s|%s|%d", typ, c.Audience, c.JTI, n), nil
}

func (b *feedBroker) append(n int) {
	for range n {
		seq := uint64(len(b.feed) + 1)
		b.feed = append(b.feed, broker.Signal{Seq: seq, Kind: broker.SignalSessionRevoked, GrantID: fmt.Sprintf("g%d", seq)})
	}
}

// TestTailAgreesWithTheStore: whatever position a stream reads from, the
// in-memory tail answers as the store does, also once it has been trimmed;
// a SET is signed once per signal and audience, and the count of kept SETs
// stays the sum of what the tail holds.
func TestTailAgreesWithTheStore(t *testing.T) {
	b := &feedBroker{}
	b.append(10)
	tr := &Transmitter{b: b, issuer: "https://writ.example"}
	tr.fan.startAt(b.LastSignalSeq()) // signals 1..10 predate the transmitter
	ctx := context.Background()
	check := func(after uint64) {
		t.Helper()
		got, err := tr.signals(ctx, after, scanPage)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := b.Signals(ctx, after, scanPage)
		if len(got) != len(want) {
			t.Fatalf("after %d: %d signals, the store has %d", after, len(got), len(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || got[i].GrantID != want[i].GrantID {
				t.Fatalf("after %d: signal %d is %d, the store's is %d", after, i, got[i].Seq, want[i].Seq)
			}
		}
	}
	for _, n := range []int{1, 300, maxTail, 1000} {
		b.append(n)
		last := b.LastSignalSeq()
		for _, after := range []uint64{0, 5, 10, last - uint64(n), last - 1, last, last - maxTail + 1} {
			check(after)
		}
		for _, aud := range []string{"rs-1", "rs-2", "rs-1"} {
			p := pending{jti: feedJTI(audienceTag(aud), last), seq: last, typ: "t"}
			if _, err := tr.feedSET(p, aud); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := b.signed.Load(); got != 8 {
		t.Errorf("%d SETs signed for 4 signals and 2 audiences", got)
	}
	held := 0
	for _, ts := range tr.fan.tail {
		held += len(ts.sets)
	}
	if len(tr.fan.tail) > maxTail || held != tr.fan.sets {
		t.Errorf("tail of %d signals holding %d SETs, counted %d", len(tr.fan.tail), held, tr.fan.sets)
	}
}

// TestTailRestartsWhenFarBehind: a tail more than maxTail signals behind
// the feed starts again at the newest maxTail instead of reading every
// signal since; streams before it read the store, and every answer still
// agrees with the store.
func TestTailRestartsWhenFarBehind(t *testing.T) {
	b := &feedBroker{}
	tr := &Transmitter{b: b, issuer: "https://writ.example"}
	tr.fan.startAt(b.LastSignalSeq())
	b.append(3*maxTail + 7)
	ctx := context.Background()
	last := b.LastSignalSeq()
	if _, err := tr.signals(ctx, last-1, scanPage); err != nil {
		t.Fatal(err)
	}
	if n := b.read.Load(); n > maxTail {
		t.Errorf("the first read at the tail took %d signals from the store, want at most %d", n, maxTail)
	}
	for _, after := range []uint64{last - 1, 0, last - maxTail - 1, last - maxTail, last - 10} {
		got, err := tr.signals(ctx, after, scanPage)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := b.Signals(ctx, after, scanPage)
		if len(got) != len(want) || (len(got) > 0 && (got[0].Seq != want[0].Seq || got[len(got)-1].Seq != want[len(want)-1].Seq)) {
			t.Fatalf("after %d: %d signals, the store has %d", after, len(got), len(want))
		}
		if n := len(tr.fan.tail); n > maxTail {
			t.Fatalf("after %d: the tail holds %d signals, more than %d", after, n, maxTail)
		}
	}
	if tr.fan.from != last-maxTail {
		t.Errorf("the tail starts after %d, want %d (the newest %d)", tr.fan.from, last-maxTail, maxTail)
	}
}
