package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxBatch bounds how many calls share one transaction.
const maxBatch = 1000

// groupCommit shares transactions between concurrent Batch calls without
// waiting for company: a call that finds no commit in flight commits at
// once; calls that arrive during a commit queue up and the next of them
// commits the whole queue in one transaction (one fsync). A lone caller
// thus pays what Update costs, and under load the batch size follows the
// arrival rate. bbolt's own DB.Batch instead holds every batch open for
// MaxBatchDelay (10 ms), which dominates the latency of the agent API.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*batchCall
	leading bool // a call is committing, and will hand the lead on
}

type batchCall struct {
	fn  func(*bolt.Tx) error
	err error
	// wake receives one value: true to lead the next commit, false when
	// err holds the outcome.
	wake chan bool
}

// batch runs fn in a transaction shared with concurrent calls. Like
// DB.Batch, fn may run more than once: a call whose fn fails is taken out
// and run again alone, so another call's writes never cause its error.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	g := &s.group
	c := &batchCall{fn: fn, wake: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		if lead := <-c.wake; !lead {
			return c.err
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}

	g.mu.Lock()
	n := min(len(g.queue), maxBatch)
	calls := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	s.commit(calls)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wake <- true
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, other := range calls {
		if other != c {
			other.wake <- false
		}
	}
	return c.err
}

// commit runs calls in one transaction, setting each call's err. A failing
// call is removed and the rest retried; failed calls then run alone.
func (s *Store) commit(calls []*batchCall) {
	var failed []*batchCall
	for len(calls) > 0 {
		failIdx := -1
		err := s.db.Update(func(btx *bolt.Tx) error {
			for i, c := range calls {
				if err := safely(c.fn, btx); err != nil {
					failIdx = i
					return err
				}
			}
			return nil
		})
		if failIdx >= 0 {
			failed = append(failed, calls[failIdx])
			calls = append(calls[:failIdx:failIdx], calls[failIdx+1:]...)
			continue
		}
		for _, c := range calls {
			c.err = err
		}
		break
	}
	for _, c := range failed {
		c.err = s.db.Update(func(btx *bolt.Tx) error { return safely(c.fn, btx) })
	}
}

// safely runs fn, turning a panic into an error: fn is the caller's code
// running on another caller's goroutine, which must not die of it.
func safely(fn func(*bolt.Tx) error, btx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: batch function panicked: %v", r)
		}
	}()
	return fn(btx)
}
