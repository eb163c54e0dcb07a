package cmd

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"

	"github.com/spf13/pflag"
)

// addCPUProfileFlag adds --cpuprofile, hidden: writ bench --profile asks
// the server it starts for a CPU profile of the whole run.
func addCPUProfileFlag(fl *pflag.FlagSet, into *string) {
	fl.StringVar(into, "cpuprofile", "", "write a CPU profile of this run to the file (for writ bench --profile)")
	_ = fl.MarkHidden("cpuprofile")
}

// startCPUProfile starts profiling into path (nothing when path is empty)
// and returns what stops it and closes the file; calling it again does
// nothing. Stopping also writes a heap profile of the live objects next to
// it (".cpu.pprof" becomes ".heap.pprof"), for the memory figures of writ
// bench: writ serve stops it when asked to shut down, while what it holds
// is still alive.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		writeHeapProfile(strings.TrimSuffix(strings.TrimSuffix(path, ".pprof"), ".cpu") + ".heap.pprof")
	}), nil
}

// writeHeapProfile writes a profile of the live heap to path, after a
// collection so that it shows what is held, not what is garbage. A failure
// is reported on stderr: the run itself succeeded.
func writeHeapProfile(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "writ: heap profile: %v\n", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "writ: heap profile %s: %v\n", path, err)
	}
}
