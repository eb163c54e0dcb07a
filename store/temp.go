package store

import (
	"path/filepath"
	"testing"
)

// OpenTemp opens a new store in tb.TempDir() without fsync, for tests of
// other packages that need a real store, and closes it when the test ends.
func OpenTemp(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open temporary store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close temporary store: %v", err)
		}
	})
	return s
}
