package load

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     time.Duration
		ok       bool
	}{
		{"plain", "4242 (writ) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 8 0 100 0 0", 2 * time.Second, true},
		{"name with spaces and parens", "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, true},
		{"no name", "7 writ R 1", 0, false},
		{"short", "7 (writ) R 1 2 3", 0, false},
		{"not a number", "7 (writ) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, false},
		{"negative", "7 (writ) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0", 0, false},
		{"overflow", "7 (writ) R 1 7 7 0 -1 0 0 0 0 0 9223372036854775807 4 0", 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: got %s, %v; want %s, ok %t", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStatusMemory(t *testing.T) {
	for _, tc := range []struct {
		name, in             string
		rss, hwm, anon, file int64
		ok                   bool
	}{
		{"all", "Name:\twrit\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\nRssFile:\t 500 kB\nRssShmem:\t 12 kB\n", 1 << 20, 2 << 20, 512 << 10, 500 << 10, true},
		{"no RssAnon, RssFile (old kernel)", "VmHWM:\t  2 kB\nVmRSS:\t  1 kB\n", 1 << 10, 2 << 10, 0, 0, true},
		{"missing HWM", "VmRSS:\t 1 kB\n", 0, 0, 0, 0, false},
		{"other unit", "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", 0, 0, 0, 0, false},
		{"garbage", "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", 0, 0, 0, 0, false},
		{"garbage RssFile", "VmHWM:\t 2 kB\nVmRSS:\t 1 kB\nRssFile:\t -1 kB\n", 0, 0, 0, 0, false},
	} {
		m, err := parseStatusMemory([]byte(tc.in))
		if (err == nil) != tc.ok || m["VmRSS"] != tc.rss || m["VmHWM"] != tc.hwm || m["RssAnon"] != tc.anon || m["RssFile"] != tc.file {
			t.Errorf("%s: got %v %v; want %d %d %d %d ok %t", tc.name, m, err, tc.rss, tc.hwm, tc.anon, tc.file, tc.ok)
		}
	}
}

func TestParseIOWriteBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"rchar: 6976\nwchar: 0\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n", 8192, true},
		{"rchar: 1\n", 0, false},
		{"write_bytes: -1\n", 0, false},
		{"write_bytes: lots\n", 0, false},
	} {
		got, err := parseIOWriteBytes([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %d %v, want %d ok %t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestReadProcSelf reads this test process, which is alive and has used
// memory: a real /proc answers in the format the parsers expect.
func TestReadProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS || s.Anon > s.RSS {
		t.Errorf("RSS %d, peak %d", s.RSS, s.HWM)
	}
}

// FuzzProcParsers: whatever /proc holds, the parsers answer without
// panicking, and a CPU time or a size they accept is never negative.
func FuzzProcParsers(f *testing.F) {
	f.Add([]byte("4242 (writ) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 8 0 100 0 0"))
	f.Add([]byte("VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\nRssAnon:\t 512 kB\n"))
	f.Add([]byte("7 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && d < 0 {
			t.Errorf("CPU time %s from %q", d, b)
		}
		if n, err := parseIOWriteBytes(b); err == nil && n < 0 {
			t.Errorf("write_bytes %d from %q", n, b)
		}
		if m, err := parseStatusMemory(b); err == nil {
			for k, v := range m {
				if v < 0 {
					t.Errorf("%s = %d from %q", k, v, b)
				}
			}
		}
	})
}
