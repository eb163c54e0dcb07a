//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// Outside Linux the store's mapping is left to the kernel (see
// mmap_linux.go for what the trimmer does there).

type mapTrimmer struct{}

func newTrimmer(*bolt.DB) *mapTrimmer { return nil }

func (m *mapTrimmer) afterTx() {}

type scanTrim struct{}

func newScanTrim(*bolt.Tx) scanTrim { return scanTrim{} }

func (scanTrim) visit() {}
