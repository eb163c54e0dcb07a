package ssf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"sync"

	"github.com/writhq/writ/broker"
)

// A revocation reaches every stream, and a resource server run as many
// replicas has a stream per replica. What one signal costs therefore
// multiplies by the streams; fanout makes the shared part of it be paid
// once per signal instead of once per stream:
//
//   - the newest signals are kept in memory, so a woken stream scans the
//     feed without a store transaction of its own;
//   - the SET for a signal depends only on the signal and the stream's
//     audience (its receiver), not on the stream: its jti names the
//     audience, not the stream. Every stream of a receiver is sent the
//     same SET, signed once and kept with the signal.
type fanout struct {
	mu sync.Mutex
	// tail holds every feed signal with from < Seq ≤ upto, in order.
	from, upto uint64
	tail       []tailSignal
	// sets counts the SETs kept in the tail, bounded by maxCachedSets.
	sets int
}

// tailSignal is a signal of the tail and the SETs made of it, by audience.
type tailSignal struct {
	sig  broker.Signal
	sets map[string]string
}

// maxTail bounds the signals kept in memory: a stream further behind reads
// the store, as every stream did before.
const maxTail = 4096

// maxCachedSets bounds the SETs kept in the tail (one per signal and
// audience that got it; about 1 KiB each, so ≈16 MiB at most); beyond it
// SETs are signed for each delivery, as before.
const maxCachedSets = 16384

// startAt empties the tail and starts it at seq: only signals after seq
// will be kept.
func (f *fanout) startAt(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.from, f.upto, f.tail, f.sets = seq, seq, nil, 0
}

// signals returns up to max feed signals after seq, in order, like
// Broker.Signals, from memory when the tail covers them.
func (t *Transmitter) signals(ctx context.Context, after uint64, max int) ([]broker.Signal, error) {
	f := &t.fan
	head := t.b.LastSignalSeq()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.upto < head && after >= f.from {
		if err := t.extendTail(ctx, head); err != nil {
			return nil, err
		}
	}
	if after < f.from { // before the tail, or trimmed out of it just now
		return t.b.Signals(ctx, after, max)
	}
	i := sort.Search(len(f.tail), func(i int) bool { return f.tail[i].sig.Seq > after })
	n := min(max, len(f.tail)-i)
	out := make([]broker.Signal, n)
	for j := range n {
		out[j] = f.tail[i+j].sig
	}
	return out, nil
}

// extendTail reads the signals after the tail up to at least head (the
// feed's last seq, read before) from the store. Call with f.mu held.
func (t *Transmitter) extendTail(ctx context.Context, head uint64) error {
	f := &t.fan
	if head-f.upto > maxTail {
		// The tail fell behind by more than it keeps (no stream read it
		// for a while): start it again at the newest maxTail signals, not
		// by reading all since under the lock. Older ones come from the
		// store, as for any stream before the tail.
		f.tail, f.sets = nil, 0
		f.from, f.upto = head-maxTail, head-maxTail
	}
	for f.upto < head {
		page, err := t.b.Signals(ctx, f.upto, scanPage)
		if err != nil {
			return err
		}
		for _, s := range page {
			f.tail = append(f.tail, tailSignal{sig: s})
			f.upto = s.Seq
		}
		if len(page) < scanPage {
			// Every signal up to head was committed before head was
			// published, so the store holds nothing else up to it.
			f.upto = max(f.upto, head)
		}
	}
	if drop := len(f.tail) - maxTail; drop > 0 {
		for _, ts := range f.tail[:drop] {
			f.sets -= len(ts.sets)
		}
		f.from = f.tail[drop-1].sig.Seq
		f.tail = append(f.tail[:0:0], f.tail[drop:]...)
	}
	return nil
}

// feedSET returns the SET carrying feed signal p to audience aud: the one
// already made for that audience when the signal is in the tail, or a new
// one, kept there.
func (t *Transmitter) feedSET(p pending, aud string) (string, error) {
	f := &t.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(len(f.tail), func(i int) bool { return f.tail[i].sig.Seq >= p.seq })
	if i == len(f.tail) || f.tail[i].sig.Seq != p.seq {
		return t.sign(p, aud) // older than the tail: made for this delivery only
	}
	ts := &f.tail[i]
	if set, ok := ts.sets[aud]; ok {
		return set, nil
	}
	// Signed under f.mu: the streams asking at the same moment want this
	// very SET, and would otherwise each sign it.
	set, err := t.sign(p, aud)
	if err != nil {
		return "", err
	}
	if f.sets < maxCachedSets {
		if ts.sets == nil {
			ts.sets = make(map[string]string, 1)
		}
		ts.sets[aud] = set
		f.sets++
	}
	return set, nil
}

// audienceTag names an audience in the jti of the feed SETs sent to it:
// 16 hex digits of its SHA-256, fixed length and URI-safe whatever the
// receiver id looks like.
func audienceTag(aud string) string {
	h := sha256.Sum256([]byte(aud))
	return hex.EncodeToString(h[:8])
}
