package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/store"
)

// Issue 10: writ keys list and rotate never create a store at a mistyped
// --db; they say there is none.
func TestKeysNeverCreateAStore(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "writ.yaml")
	if err := os.WriteFile(cfgFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	saved := globals
	t.Cleanup(func() { globals = saved })
	globals.configPath = cfgFile

	globals.dbPath = filepath.Join(dir, "wirt.db") // the typo
	_, err := openExistingBroker(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no store at") {
		t.Fatalf("open at a missing path: %v", err)
	}
	if _, err := os.Stat(globals.dbPath); !os.IsNotExist(err) {
		t.Fatalf("a store was created at the mistyped path (%v)", err)
	}

	globals.dbPath = filepath.Join(dir, "data", "writ.db")
	if err := os.MkdirAll(filepath.Dir(globals.dbPath), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(globals.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	env, err := openExistingBroker(context.Background())
	if err != nil {
		t.Fatalf("open an existing store: %v", err)
	}
	env.Close()
}
