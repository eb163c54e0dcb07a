package cmd

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/pflag"
)

// addCPUProfileFlag adds --cpuprofile, hidden: writ bench --profile asks
// the server it starts for a CPU profile of the whole run.
func addCPUProfileFlag(fl *pflag.FlagSet, into *string) {
	fl.StringVar(into, "cpuprofile", "", "write a CPU profile of this run to the file (for writ bench --profile)")
	_ = fl.MarkHidden("cpuprofile")
}

// startCPUProfile starts profiling into path (nothing when path is empty)
// and returns what stops it and closes the file.
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
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
