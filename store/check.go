package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check runs bbolt's consistency check over the whole file (every page
// reachable once, freelist and branches sound) in a read transaction, and
// returns every problem it finds joined, or nil.
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("store %s is inconsistent: %w", s.path, errors.Join(errs...))
	}
	return nil
}
