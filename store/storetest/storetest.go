// Package storetest opens real writ stores for tests of other packages.
// It is the only place that links package testing with the store, so the
// writ binary never does.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/writhq/writ/store"
)

// MustOpen opens a new store in tb.TempDir() without fsync, and when the
// test ends runs bbolt's consistency check over it and closes it.
func MustOpen(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(filepath.Join(tb.TempDir(), "writ.db"), store.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open temporary store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil {
			tb.Errorf("%v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close temporary store: %v", err)
		}
	})
	return s
}
