//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// Outside Linux the store's mapping is left to the kernel (see
// mmap_linux.go for what the trimmer does there).

var trimBudget int64 = 32 << 20

type mapTrimmer struct{}

func startTrimmer(*bolt.DB, int64) *mapTrimmer { return nil }

func (m *mapTrimmer) stop() {}

func trimMapping(*bolt.DB) error { return nil }

type scanTrim struct{}

func newScanTrim(*bolt.Tx) scanTrim { return scanTrim{} }

func (scanTrim) visit() {}
