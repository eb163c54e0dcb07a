// Package brokertest holds test support for the broker and its users: an
// in-memory broker.Store with the same semantics as package store's bbolt
// one, and the conformance suite both must pass. It is imported by tests
// only, so it may import package testing; the writ binary never links it.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/writhq/writ/broker"
)

// ErrClosed is returned by a transaction started after Close.
var ErrClosed = errors.New("brokertest: store is closed")

// ErrTxClosed is returned by a transaction's methods called after its fn
// returned: a Tx kept past its fn is a bug.
var ErrTxClosed = errors.New("brokertest: transaction used after it ended")

// Store is an in-memory broker.Store for tests that want speed and no
// disk. It keeps what the bbolt store keeps: records as bytes (JSON here,
// so callers never alias stored data; the bbolt store's encoding differs,
// its semantics do not), the same ordered index keys, the same audit chaining and signal sequence. A transaction
// is all or nothing: a writer works on a copy-on-write version of the state
// and publishes it only when fn succeeds. One writer runs at a time; a View
// reads the version that was current when it began, never a half-written
// one, and never waits for a writer.
//
// A write transaction copies each bucket it changes (the audit log and the
// feed are appended in place), so a commit costs O(records of the kinds it
// writes): right for tests, not for a load of 100,000 grants.
//
// Nothing survives the process: tests of crashes and restarts use the
// real store (store/storetest.MustOpen).
type Store struct {
	cur    atomic.Pointer[state]
	writer sync.Mutex // one write transaction at a time
	closed atomic.Bool
}

var _ broker.Store = (*Store)(nil)

// NewStore returns an empty store with every record namespace declared.
func NewStore() *Store {
	st := &state{buckets: map[string]*bucket{}}
	for _, name := range allBuckets {
		st.buckets[name] = newBucket()
	}
	for _, ns := range broker.RecordNamespaces {
		st.buckets[recordBucket(ns)] = newBucket()
	}
	s := &Store{}
	s.cur.Store(st)
	return s
}

// Path names the store for messages.
func (s *Store) Path() string { return "brokertest:memory" }

// Close ends the store: later transactions fail with ErrClosed. A write
// transaction in progress finishes first.
func (s *Store) Close() error {
	s.writer.Lock()
	defer s.writer.Unlock()
	s.closed.Store(true)
	return nil
}

// View runs fn over the current version of the state. The transaction has
// no writers in its type.
func (s *Store) View(ctx context.Context, fn func(broker.TxReader) error) error {
	if err := s.begin(ctx, "read"); err != nil {
		return err
	}
	tx := &readTx{s: s.cur.Load()}
	defer tx.ended.Store(true)
	return fn(tx)
}

// Update runs fn in a write transaction and publishes its writes when fn
// returns nil. If fn returns an error (or panics) nothing is written; fn's
// error is returned as is.
func (s *Store) Update(ctx context.Context, fn func(broker.Tx) error) error {
	if err := s.begin(ctx, "update"); err != nil {
		return err
	}
	return s.write(fn)
}

// write runs fn in a write transaction and publishes its writes when fn
// returns nil.
func (s *Store) write(fn func(broker.Tx) error) error {
	s.writer.Lock()
	defer s.writer.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("update store %s: %w", s.Path(), ErrClosed)
	}
	base := s.cur.Load()
	tx := &writeTx{readTx: readTx{s: base.fork()}, owned: map[string]bool{}}
	defer tx.ended.Store(true)
	if err := fn(tx); err != nil {
		return err
	}
	s.cur.Store(tx.s)
	return nil
}

// Batch is Update without group commit, which memory does not need, but
// with the bbolt store's retry: as there, a call whose fn fails is run
// again alone, and the second run's outcome is returned. So fn runs more
// than once here just as it does there, and a domain test catches a Batch
// function that is not idempotent.
func (s *Store) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	if err := s.begin(ctx, "update"); err != nil {
		return err
	}
	run := func(tx broker.Tx) (err error) {
		// As in the bbolt store, where fn may run on another caller's
		// goroutine, a panic is an error.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("brokertest: batch function panicked: %v", r)
			}
		}()
		return fn(tx)
	}
	if err := s.write(run); err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return s.write(run)
}

// begin refuses a transaction under a done context or on a closed store.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%s store %s: %w", op, s.Path(), ErrClosed)
	}
	return nil
}

// state is one version of the store's contents. A published state is
// never changed: a write transaction forks it and replaces the buckets it
// writes with its own copies.
type state struct {
	buckets map[string]*bucket
	// audit and signals are append-only: entry i has Seq i+1. A fork
	// shares the backing array and appends past the end, which no reader
	// of an older version looks at.
	audit   [][]byte
	signals [][]byte
}

// fork returns a state sharing every bucket of st, for a write
// transaction to copy the buckets it writes.
func (st *state) fork() *state {
	return &state{buckets: maps.Clone(st.buckets), audit: st.audit, signals: st.signals}
}
