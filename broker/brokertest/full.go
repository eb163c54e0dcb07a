package brokertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/writhq/writ/broker"
)

// FullStore wraps a store so that, while Full is set, every commit fails
// as the bbolt store's do on a full disk: store.Store wraps a failed
// commit in broker.ErrStoreUnavailable (cmd's TestFaultDiskFull shows it
// with a real one). Reads go through. Commits counts every Update and
// Batch asked for, failed or not.
type FullStore struct {
	broker.Store
	Full    atomic.Bool
	Commits atomic.Int64
}

func (s *FullStore) refuse() error {
	return fmt.Errorf("%w: update store %s: %w", broker.ErrStoreUnavailable, s.Path(), syscall.ENOSPC)
}

// Update fails while Full is set, and otherwise is the wrapped store's.
func (s *FullStore) Update(ctx context.Context, fn func(broker.Tx) error) error {
	s.Commits.Add(1)
	if s.Full.Load() {
		return s.refuse()
	}
	return s.Store.Update(ctx, fn)
}

// Batch fails while Full is set, and otherwise is the wrapped store's.
func (s *FullStore) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	s.Commits.Add(1)
	if s.Full.Load() {
		return s.refuse()
	}
	return s.Store.Batch(ctx, fn)
}
