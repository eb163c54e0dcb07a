package ssf

import (
	"context"
	"sync"
)

// feedWake wakes every stream waiting for the feed to move, from one
// goroutine that Run owns, instead of a goroutine per waiting long poll or
// push worker: with a stream per replica of every resource server, those
// were a thousand goroutines started and woken per revocation.
type feedWake struct {
	mu      sync.Mutex
	running bool
	seq     uint64        // the newest feed seq the watcher has seen
	ch      chan struct{} // closed when the watcher sees a newer one
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// watchFeed publishes the feed's progress to waiters until ctx ends.
func (t *Transmitter) watchFeed(ctx context.Context) {
	w := &t.wake
	w.mu.Lock()
	w.running, w.seq, w.ch = true, t.b.LastSignalSeq(), make(chan struct{})
	seq := w.seq
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		close(w.ch) // waiters look again, and fall back to waiting alone
		w.mu.Unlock()
	}()
	for t.b.WaitSignals(ctx, seq) {
		seq = t.b.LastSignalSeq()
		w.mu.Lock()
		if seq > w.seq {
			w.seq = seq
			close(w.ch)
			w.ch = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

// waitFeed returns a channel closed when the feed holds a signal after
// seq (or, rarely, when it should be asked again). While Run runs it is
// the watcher's channel; otherwise a goroutine that ends with ctx waits
// for this caller alone.
func (t *Transmitter) waitFeed(ctx context.Context, after uint64) <-chan struct{} {
	w := &t.wake
	w.mu.Lock()
	if w.running {
		defer w.mu.Unlock()
		if w.seq > after {
			return closedChan
		}
		return w.ch
	}
	w.mu.Unlock()
	ch := make(chan struct{})
	go func() {
		if t.b.WaitSignals(ctx, after) {
			close(ch)
		}
	}()
	return ch
}
