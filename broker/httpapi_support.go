package broker

import "context"

// Ping reports whether the store answers a read, for health checks.
func (s *Service) Ping(ctx context.Context) error {
	return s.store.View(ctx, func(tx TxReader) error {
		_, err := tx.Issuer()
		return err
	})
}
