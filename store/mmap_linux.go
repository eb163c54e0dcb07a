package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the store through a read-only shared mapping of its file
// (it writes with pwrite). Every page a reader touches stays mapped, and
// so counts in writ's RSS, until the mapping goes: bbolt maps the file
// once and again only when it grows. bbolt advises the mapping
// MADV_RANDOM, which stops read-ahead but not the kernel's fault-around:
// a read fault on a file already in the page cache maps up to 64 KiB
// around the page (fault_around_bytes), MADV_RANDOM or not (measured on
// Linux 6.18: one byte read every 64 KiB of a 64 MiB file leaves all 64
// MiB mapped, with or without the advice). Records of every bucket sit side by
// side in the file, so reading the active grants at start-up, or a few
// thousand random lookups under load, leaves the whole file mapped: 500
// MiB of RSS for 100,000 grants.
//
// The trimmer bounds that: it watches the process's file-backed RSS and,
// when it has grown by more than a budget since the last trim, drops the
// store's mapping of every page with MADV_DONTNEED. For a read-only shared
// file mapping that only unmaps the pages from writ: they stay in the page
// cache (shared with every process and reclaimable by the kernel), and the
// next read of one is a minor fault. Nothing can be lost: writ never
// writes through the mapping.

// Defaults of the trimmer. It reads /proc/self/statm every trimFast
// while file-backed RSS grows and backs off, doubling, to trimSlow when it
// does not (an idle server checks four times a second), and trims when
// file-backed RSS grew by more than trimBudget since the last trim.
//
// A goroutine cannot keep up with a scan that looks records up through an
// index (the start-up read of every active grant maps some 10 GiB a second
// of 64 KiB windows, faulting the same windows again after each trim), so
// scans check too, every scanTrimEvery keys, in their own transaction
// (scanTrim).
const (
	trimFast      = 10 * time.Millisecond
	trimSlow      = 250 * time.Millisecond
	scanTrimEvery = 64
)

// trimBudget is how far file-backed RSS may grow between trims, in bytes.
// A variable only so that tests can make it small.
var trimBudget int64 = 32 << 20

// mapTrimmer is the goroutine that trims a store's mapping. Its owner is
// the Store, whose Close stops it before closing the database.
type mapTrimmer struct {
	db     *bolt.DB
	budget int64
	cancel context.CancelFunc
	done   chan struct{}
	trims  atomic.Int64 // how many trims dropped the mapping
}

// startTrimmer starts trimming db's mapping past budget bytes of growth
// of file-backed RSS. It returns nil (and trims nothing) when
// /proc/self/statm cannot be read.
func startTrimmer(db *bolt.DB, budget int64) *mapTrimmer {
	if _, err := fileRSS(); err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &mapTrimmer{db: db, budget: budget, cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

func (m *mapTrimmer) run(ctx context.Context) {
	defer close(m.done)
	every := trimFast
	t := time.NewTimer(every)
	defer t.Stop()
	floor, _ := fileRSS()
	last := floor
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rss, err := fileRSS()
		if err != nil {
			t.Reset(trimSlow)
			continue
		}
		if rss > last {
			every = trimFast
		} else {
			every = min(2*every, trimSlow)
		}
		// Something else (another store closing, the kernel) may have
		// dropped pages: growth counts from the lowest figure seen.
		floor, last = min(floor, rss), rss
		if rss-floor > m.budget {
			if trimMapping(m.db) == nil {
				m.trims.Add(1)
			}
			if rss, err := fileRSS(); err == nil {
				floor, last = rss, rss
			}
		}
		t.Reset(every)
	}
}

// stop ends the trimmer and waits for it. A nil trimmer is stopped.
func (m *mapTrimmer) stop() {
	if m == nil {
		return
	}
	m.cancel()
	<-m.done
}

// trimMapping drops db's mapping of every page of its file. It runs inside
// a read transaction: bbolt re-maps the file only under its mmap lock,
// which a read transaction holds shared, so the address and the length
// stay valid until the madvise returns (after a re-map the old address
// could be anyone's memory).
func trimMapping(db *bolt.DB) error {
	return db.View(adviseDontNeed)
}

// adviseDontNeed drops the mapping of the pages of btx's database up to
// the size btx sees (bbolt's mapping is never shorter). The caller holds
// btx open, so the mapping stays where it is.
func adviseDontNeed(btx *bolt.Tx) error {
	db := btx.DB()
	addr, n := db.Info().Data, uintptr(btx.Size())
	if addr == 0 || n == 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, n, syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("madvise %s: %w", db.Path(), errno)
	}
	return nil
}

// scanTrim trims the mapping during a long scan: every scanTrimEvery keys
// it visits, it trims when file-backed RSS grew by more than trimBudget
// since its first check. It runs in the scan's transaction, which holds
// bbolt's mmap lock shared (a read transaction) or is the only one that
// re-maps (the write transaction), so the mapping cannot move under it.
type scanTrim struct {
	btx     *bolt.Tx
	budget  int64
	visited int
	floor   int64
	trims   int
}

func newScanTrim(btx *bolt.Tx) scanTrim { return scanTrim{btx: btx, budget: trimBudget, floor: -1} }

// visit counts one key visited.
func (g *scanTrim) visit() {
	g.visited++
	if g.visited%scanTrimEvery != 0 {
		return
	}
	rss, err := fileRSS()
	if err != nil {
		return
	}
	if g.floor < 0 || rss < g.floor {
		g.floor = rss
		return
	}
	if rss-g.floor <= g.budget {
		return
	}
	if adviseDontNeed(g.btx) != nil {
		return
	}
	g.trims++
	if rss, err := fileRSS(); err == nil {
		g.floor = rss
	}
}

// pageSize is the kernel's page size, the unit of /proc/self/statm.
var pageSize = sync.OnceValue(func() int64 { return int64(os.Getpagesize()) })

// fileRSS is this process's resident shared pages (file-backed and shmem:
// RssFile + RssShmem), in bytes, from /proc/self/statm, whose third field
// it is. One read of a short file, cheap enough for a ticker.
func fileRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("/proc/self/statm: %q: want at least 3 fields", b)
	}
	n, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return n * pageSize(), nil
}
