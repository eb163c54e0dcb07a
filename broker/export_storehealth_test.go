package broker

import (
	"context"
	"time"
)

// WatchStoreForTest runs the store watch Run starts, with the test's tick.
func (s *Service) WatchStoreForTest(ctx context.Context, tick <-chan time.Time) {
	s.watchStore(ctx, tick)
}
