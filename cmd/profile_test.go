package cmd

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartCPUProfile(t *testing.T) {
	stop, err := startCPUProfile("")
	if err != nil {
		t.Fatal(err)
	}
	stop() // nothing asked, nothing written
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	if stop, err = startCPUProfile(path); err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile file: %v %v", fi, err)
	}
	if _, err := startCPUProfile(path); err == nil {
		t.Error("an existing file was written over")
	}
}
