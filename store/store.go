// Package store keeps writ's state in one bbolt file: it implements
// broker.Store and broker.Tx. It is the only package that imports bbolt.
package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// Options configure Open and OpenReadOnly.
type Options struct {
	// Timeout is how long to wait for another process to release the file
	// before failing; 0 means one second.
	Timeout time.Duration
	// NoSync skips fsync on commit. For tests and benchmarks only: a crash
	// can then lose acknowledged writes.
	NoSync bool
}

// DefaultTimeout is the lock wait when Options.Timeout is 0.
const DefaultTimeout = time.Second

func (o Options) bolt(readOnly bool) *bolt.Options {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &bolt.Options{
		Timeout:      timeout,
		NoSync:       o.NoSync,
		ReadOnly:     readOnly,
		FreelistType: bolt.FreelistMapType,
	}
}

// Store is a writ store: one bbolt file.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
	group    groupCommit
	trimmer  *mapTrimmer
}

var _ broker.Store = (*Store)(nil)

// Path names the store's file.
func (s *Store) Path() string { return s.path }

// Close releases the file. Transactions still running finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(broker.TxReader) error) error {
	return s.run(ctx, "read", s.db.View, func(tx broker.Tx) error { return fn(tx) })
}

// Update runs fn in a read-write transaction and commits it durably
// (fsync) before returning. If fn returns an error nothing is written.
func (s *Store) Update(ctx context.Context, fn func(broker.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("update store %s: %w", s.path, ErrReadOnlyTx)
	}
	return s.run(ctx, "update", s.db.Update, fn)
}

// Batch is Update with group commit: concurrent calls share one
// transaction and one fsync (see groupCommit). fn may run more than once.
func (s *Store) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("update store %s: %w", s.path, ErrReadOnlyTx)
	}
	return s.run(ctx, "update", s.batch, fn)
}

// run starts a transaction unless ctx is already done. fn's own error is
// returned as is; bbolt's (begin, commit) is wrapped with the path.
func (s *Store) run(ctx context.Context, op string, begin func(func(*bolt.Tx) error) error, fn func(broker.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	returned := false // fn returned, rather than panicked (batch recovers a panic)
	err := begin(func(btx *bolt.Tx) error {
		returned = false
		fnErr = fn(&tx{tx: btx})
		returned = true
		return fnErr
	})
	s.trimmer.afterTx()             // bounds the file mapped into RSS (mmap_linux.go)
	if err != nil && err != fnErr { //nolint:errorlint // identity: was it fn's error?
		if op == "update" && returned {
			// The commit failed (no space, a file size limit, an I/O
			// error): bbolt rolled it back, so nothing was written.
			return fmt.Errorf("%w: %s store %s: %w", broker.ErrStoreUnavailable, op, s.path, err)
		}
		return fmt.Errorf("%s store %s: %w", op, s.path, err)
	}
	return err
}
