package load

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux architecture Go runs on.
const clockTicks = 100

// ProcSample is what the kernel says about a server process at one moment.
type ProcSample struct {
	// CPU is the process's user and system time so far (all its threads).
	CPU time.Duration
	// RSS is the resident set now (VmRSS), HWM its peak so far (VmHWM), in bytes.
	RSS, HWM int64
	// Anon is the part of RSS that is the process's own memory (RssAnon);
	// the rest is mostly the store's file mapped in (RssFile: bbolt reads
	// through mmap), pages the kernel can drop and read again.
	Anon int64
	// File is the file-backed part of RSS (RssFile): the executable's pages
	// and the store's file mapped in.
	File int64
	// WriteBytes is what the process has caused to be written to storage
	// so far (write_bytes of /proc/<pid>/io); -1 when it cannot be read.
	WriteBytes int64
}

// ReadProc samples process pid from /proc (Linux only).
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("load: read the server's CPU time: %w", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("load: read the server's memory: %w", err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcSample{}, err
	}
	m, err := parseStatusMemory(status)
	if err != nil {
		return ProcSample{}, err
	}
	wb := int64(-1)
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		if n, err := parseIOWriteBytes(io); err == nil {
			wb = n
		}
	}
	return ProcSample{CPU: cpu, RSS: m["VmRSS"], HWM: m["VmHWM"], Anon: m["RssAnon"], File: m["RssFile"], WriteBytes: wb}, nil
}

// parseIOWriteBytes reads write_bytes of /proc/<pid>/io.
func parseIOWriteBytes(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("load: /proc io write_bytes %q is not a count of bytes", rest)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("load: /proc io without write_bytes")
}

// parseStatCPU reads utime+stime (fields 14 and 15) of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted after the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: /proc stat without a command name: %.40q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11]; stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("load: /proc stat has %d fields after the name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		// 2^40 ticks are 348 years of CPU time: more is not a real count
		// and would overflow a Duration.
		if err != nil || n < 0 || n > 1<<40 {
			return 0, fmt.Errorf("load: /proc stat CPU time %q is not a count of ticks", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseStatusMemory reads VmRSS, VmHWM, RssAnon and RssFile (in kB) of
// /proc/<pid>/status, in bytes. VmRSS and VmHWM must be there; RssAnon
// and RssFile (Linux 4.5 and later) are 0 when they are not.
func parseStatusMemory(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM" && name != "RssAnon" && name != "RssFile") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return nil, fmt.Errorf("load: /proc status %s is %q, want a number of kB", name, rest)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<40 { // 1 PiB, in kB
			return nil, fmt.Errorf("load: /proc status %s is %q, want a number of kB", name, rest)
		}
		out[name] = n << 10
	}
	if _, ok := out["VmRSS"]; !ok {
		return nil, fmt.Errorf("load: /proc status without VmRSS (a kernel thread, or not Linux)")
	}
	if _, ok := out["VmHWM"]; !ok {
		return nil, fmt.Errorf("load: /proc status without VmHWM (a kernel thread, or not Linux)")
	}
	return out, nil
}
