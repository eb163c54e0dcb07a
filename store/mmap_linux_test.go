package store

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// mapping is one entry of /proc/self/smaps.
type mapping struct {
	size, rss int64 // bytes
	flags     []string
}

// mappingAt reads the entry of /proc/self/smaps of the mapping that starts
// at addr; ok is false when there is none.
func mappingAt(tb testing.TB, addr uintptr) (m mapping, ok bool) {
	tb.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, found := strings.Cut(fields[0], "-"); found && !strings.HasSuffix(fields[0], ":") {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				if in {
					return m, true
				}
				in = uintptr(start) == addr
				m = mapping{size: int64(end - start)}
				continue
			}
		}
		if !in {
			continue
		}
		switch fields[0] {
		case "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				tb.Fatalf("smaps: %q: %v", line, err)
			}
			m.rss = kb << 10
		case "VmFlags:":
			m.flags = fields[1:]
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return m, in
}

// storeMapping is the mapping of s's file now.
func storeMapping(tb testing.TB, s *Store) mapping {
	tb.Helper()
	m, ok := mappingAt(tb, s.db.Info().Data)
	if !ok {
		tb.Fatalf("no mapping at bbolt's address %#x", s.db.Info().Data)
	}
	return m
}

// fillRecords writes n random records of size bytes into s, 500 to a
// transaction, and returns them by id.
func fillRecords(tb testing.TB, s *Store, n, size int) map[string][]byte {
	tb.Helper()
	want := make(map[string][]byte, n)
	for i := 0; i < n; i += 500 {
		update(tb, s, func(tx broker.Tx) error {
			for j := i; j < min(i+500, n); j++ {
				v := make([]byte, size)
				rand.Read(v)
				id := fmt.Sprintf("r%08d", j)
				want[id] = v
				if err := tx.PutRecord(broker.RecordSSFStream, id, v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return want
}

// readRecords reads every record straight through bbolt (not through the
// store's scan, which trims as it goes), checks each against want when
// want is not nil, and returns how many it read.
func readRecords(tb testing.TB, s *Store, want map[string][]byte) int {
	tb.Helper()
	var n int
	err := s.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketRecords).Bucket([]byte(broker.RecordSSFStream)).ForEach(func(k, v []byte) error {
			n++
			v, err := decodeRecord(broker.RecordSSFStream, string(k), v)
			if err != nil {
				return err
			}
			if want != nil && !bytes.Equal(v, want[string(k)]) {
				return fmt.Errorf("record %s: read %d bytes that differ from the %d written", k, len(v), len(want[string(k)]))
			}
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// smallBudget makes the trim budget budget for the test.
func smallBudget(t *testing.T, budget int64) {
	saved := trimBudget
	trimBudget = budget
	t.Cleanup(func() { trimBudget = saved })
}

// After the file grows past bbolt's mapping, bbolt maps it again at a new
// size: the mapping must still be advised MADV_RANDOM (VmFlags rr), and a
// trim must drop the new mapping's pages, not the old address's, without
// changing what reads return.
func TestMappingAdviceAndTrimSurviveRemap(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.trimmer = nil // this test trims by hand
	before := storeMapping(t, s)
	if !slices.Contains(before.flags, "rr") {
		t.Errorf("new store's mapping VmFlags %v lack rr (MADV_RANDOM)", before.flags)
	}
	addr := s.db.Info().Data
	want := fillRecords(t, s, 3000, 2000) // some 6 MB: several re-maps
	after := storeMapping(t, s)
	if after.size <= before.size {
		t.Fatalf("mapping is %d bytes after filling, %d before: bbolt did not re-map; the test needs more data", after.size, before.size)
	}
	t.Logf("mapping %#x (%d bytes) became %#x (%d bytes)", addr, before.size, s.db.Info().Data, after.size)
	if !slices.Contains(after.flags, "rr") {
		t.Errorf("re-mapped store's VmFlags %v lack rr (MADV_RANDOM)", after.flags)
	}

	readRecords(t, s, nil)
	read := storeMapping(t, s)
	if read.rss < 4<<20 {
		t.Fatalf("after reading every record %d bytes of the file are mapped, want at least 4 MiB", read.rss)
	}
	if err := trimMapping(s.db); err != nil {
		t.Fatal(err)
	}
	// A read transaction may touch a meta page; one fault maps 64 KiB.
	if trimmed := storeMapping(t, s); trimmed.rss > 64<<10 {
		t.Errorf("after a trim %d bytes of the file are still mapped (%d before)", trimmed.rss, read.rss)
	}
	if n := readRecords(t, s, want); n != len(want) {
		t.Errorf("read %d records after the trim, want %d", n, len(want))
	}
}

// A long scan trims as it goes: the file it maps stays within the budget
// (plus what a few dozen keys map between checks), where a plain bbolt
// read of the same records maps nearly all of it.
func TestScanTrimsAsItGoes(t *testing.T) {
	const budget = 1 << 20
	smallBudget(t, budget)
	s, err := Open(filepath.Join(t.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.trimmer = nil // only the scan trims here
	want := fillRecords(t, s, 4000, 2000)

	for _, tc := range []struct {
		name    string
		read    func(check func()) error
		maxRSS  int64 // at most, or 0
		minRSS  int64 // at least, or 0
		trimmed bool
	}{
		{name: "bbolt cursor", minRSS: 6 << 20, read: func(check func()) error {
			return s.db.View(func(btx *bolt.Tx) error {
				return btx.Bucket(bucketRecords).Bucket([]byte(broker.RecordSSFStream)).ForEach(func(_, _ []byte) error {
					check()
					return nil
				})
			})
		}},
		{name: "ForEachRecord", maxRSS: budget + 1<<20, read: func(check func()) error {
			return s.View(t.Context(), func(tx broker.TxReader) error {
				return tx.ForEachRecord(broker.RecordSSFStream, func(id string, v []byte) error {
					if !bytes.Equal(v, want[id]) {
						return fmt.Errorf("record %s differs from what was written", id)
					}
					check()
					return nil
				})
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := trimMapping(s.db); err != nil {
				t.Fatal(err)
			}
			var n int
			var peak int64
			err := tc.read(func() {
				if n++; n%100 == 0 {
					peak = max(peak, storeMapping(t, s).rss)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Fatalf("visited %d records, want %d", n, len(want))
			}
			t.Logf("peak mapped during the scan: %d KiB of a %d KiB file", peak>>10, fileSize(t, s)>>10)
			if tc.maxRSS > 0 && peak > tc.maxRSS {
				t.Errorf("a scan mapped up to %d bytes of the file, want at most %d", peak, tc.maxRSS)
			}
			if tc.minRSS > 0 && peak < tc.minRSS {
				t.Errorf("a plain read mapped only %d bytes of the file, want at least %d: the test cannot tell trimming from its absence", peak, tc.minRSS)
			}
		})
	}
}

// Reads outside scans (one record a transaction, in random order: the
// lookups of a server under load) are trimmed after their transactions:
// the file mapped stays within the budget, where without the trimmer the
// same reads map most of it.
func TestTrimmerBoundsReads(t *testing.T) {
	const budget = 1 << 20
	smallBudget(t, budget)
	saved := trimCheckEvery
	trimCheckEvery = 0 // check after every transaction
	t.Cleanup(func() { trimCheckEvery = saved })
	s, err := Open(filepath.Join(t.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	trimmer := s.trimmer
	if trimmer == nil {
		t.Fatal("no trimmer on Linux")
	}
	want := fillRecords(t, s, 4000, 2000) // re-maps under the trimmer
	ids := slices.Collect(maps.Keys(want))
	for _, tc := range []struct {
		name    string
		trimmer *mapTrimmer
		maxRSS  int64 // at most, or 0
		minRSS  int64 // at least, or 0
	}{
		{name: "without", minRSS: 4 << 20},
		{name: "with", trimmer: trimmer, maxRSS: budget + 1<<20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := trimMapping(s.db); err != nil {
				t.Fatal(err)
			}
			s.trimmer = tc.trimmer
			trims := trimmer.trims.Load()
			var peak int64
			for i, id := range ids {
				var got []byte
				err := s.View(t.Context(), func(tx broker.TxReader) error {
					v, err := tx.Record(broker.RecordSSFStream, id)
					got = v
					return err
				})
				if err != nil || !bytes.Equal(got, want[id]) {
					t.Fatalf("record %s: %d bytes, %v; want the %d written", id, len(got), err, len(want[id]))
				}
				if i%50 == 0 {
					peak = max(peak, storeMapping(t, s).rss)
				}
			}
			t.Logf("peak mapped: %d KiB of a %d KiB file; %d trims", peak>>10, fileSize(t, s)>>10, trimmer.trims.Load()-trims)
			if tc.maxRSS > 0 && peak > tc.maxRSS {
				t.Errorf("random reads mapped up to %d bytes of the file, want at most %d", peak, tc.maxRSS)
			}
			if tc.minRSS > 0 && peak < tc.minRSS {
				t.Errorf("random reads without the trimmer mapped only %d bytes, want at least %d: the test cannot tell trimming from its absence", peak, tc.minRSS)
			}
		})
	}
}

func fileSize(tb testing.TB, s *Store) int64 {
	fi, err := os.Stat(s.Path())
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}
