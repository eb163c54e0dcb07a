package store

import (
	"bytes"
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
// once and again only when it grows. bbolt advises every mapping it makes
// MADV_RANDOM (bolt_unix.go), which stops read-ahead but not the kernel's
// fault-around: a read fault on a file already in the page cache maps up
// to 64 KiB around the page (fault_around_bytes), MADV_RANDOM or not
// (measured on Linux 6.18: one byte read every 64 KiB of a 64 MiB file
// leaves all 64 MiB mapped, with or without the advice). Records of every
// bucket sit side by side in the file, so reading the active grants at
// start-up, or a few thousand random lookups under load, leaves the whole
// file mapped: 500 MiB of RSS for 100,000 grants.
//
// The trimmer bounds that: when the process's file-backed RSS has grown
// by more than a budget since the last trim, it drops the store's mapping
// of every page with MADV_DONTNEED. For a read-only shared file mapping
// that only unmaps the pages from writ: they stay in the page cache
// (shared with every process and reclaimable by the kernel), and the next
// read of one is a minor fault. Nothing can be lost: writ never writes
// through the mapping. The price is those minor faults: a page read again
// after a trim costs a fault (measured with 100,000 active grants: the
// start-up read of them all takes some 0.5 s more CPU, 2.3 s instead of
// 1.9; a full cycle's server CPU moved less than the machine's noise).
//
// It checks where the pages are faulted in, with no goroutine of its own:
// after each transaction of the Store (Store.run calls afterTx), at most
// once per trimCheckEvery, and every scanTrimEvery keys of a scan, since
// one scan that looks records up through an index (the start-up read of
// every active grant) maps some 10 GiB a second of 64 KiB windows.
const scanTrimEvery = 64

// trimBudget is how far file-backed RSS may grow between trims, in bytes,
// and trimCheckEvery the least time between two checks after
// transactions. Variables only so that tests can change them.
var (
	trimBudget     int64 = 16 << 20
	trimCheckEvery       = 2 * time.Millisecond
)

// mapTrimmer trims one store's mapping after its transactions.
type mapTrimmer struct {
	db        *bolt.DB
	budget    int64
	every     time.Duration
	start     time.Time
	lastCheck atomic.Int64 // since start, in nanoseconds
	floor     atomic.Int64 // file-backed RSS after the last trim, or the least seen since
	trimming  atomic.Bool
	trims     atomic.Int64 // how many trims dropped the mapping
}

// newTrimmer returns the trimmer of db's mapping, or nil (trim nothing)
// when /proc/self/statm cannot be read.
func newTrimmer(db *bolt.DB) *mapTrimmer {
	rss, err := fileRSS()
	if err != nil {
		return nil
	}
	m := &mapTrimmer{db: db, budget: trimBudget, every: trimCheckEvery, start: time.Now()}
	m.floor.Store(rss)
	m.lastCheck.Store(-int64(m.every))
	return m
}

// afterTx runs after each transaction, with none open in this goroutine.
// It is cheap (a clock read) unless a check is due: then it reads
// /proc/self/statm and, past the budget, one caller trims while the others
// go on.
func (m *mapTrimmer) afterTx() {
	if m == nil {
		return
	}
	now, last := int64(time.Since(m.start)), m.lastCheck.Load()
	if now-last < int64(m.every) || !m.lastCheck.CompareAndSwap(last, now) {
		return
	}
	rss, err := fileRSS()
	if err != nil {
		return
	}
	floor := m.floor.Load()
	if rss < floor {
		// Something else (another store, the kernel) dropped pages:
		// growth counts from the least figure seen.
		m.floor.CompareAndSwap(floor, rss)
		return
	}
	if rss-floor <= m.budget || !m.trimming.CompareAndSwap(false, true) {
		return
	}
	defer m.trimming.Store(false)
	if trimMapping(m.db) == nil {
		m.trims.Add(1)
	}
	if rss, err := fileRSS(); err == nil {
		m.floor.Store(rss)
	}
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
