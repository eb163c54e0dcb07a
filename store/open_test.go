package store

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "writ")
	path := filepath.Join(dir, "writ.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	update(t, s, func(tx broker.Tx) error { return tx.PutGrant(sampleGrant("g1", "a", broker.GrantActive, t0)) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the store: %v", len(entries), entries)
	}
	// Reopening finds what was written.
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	view(t, s, func(tx broker.TxReader) error {
		_, err := tx.Grant("g1")
		return err
	})
}

func TestOpenAddsMissingBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A store from a writ that predates a bucket or a record namespace.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		if err := btx.DeleteBucket(bucketSignals); err != nil {
			return err
		}
		return btx.Bucket(bucketRecords).DeleteBucket([]byte(broker.RecordSSFCursor))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	update(t, s, func(tx broker.Tx) error {
		if err := tx.AppendSignal(&broker.Signal{All: true}); err != nil {
			return err
		}
		return tx.PutRecord(broker.RecordSSFCursor, "s", []byte("1"))
	})
}

func fileHash(tb testing.TB, path string) [sha256.Size]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

// foreignBolt writes a bbolt file of some other program.
func foreignBolt(tb testing.TB, path string, opts *bolt.Options, buckets ...string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for _, name := range buckets {
			b, err := btx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// writeStore writes a writ store whose meta bucket edit changes.
func writeStore(tb testing.TB, path string, edit func(meta *bolt.Bucket) error) {
	tb.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(func(btx *bolt.Tx) error { return edit(btx.Bucket(bucketMeta)) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	random := make([]byte, 64<<10)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		make    func(tb testing.TB, path string)
		wantErr error
		wantMsg string
	}{
		{"empty file", func(tb testing.TB, p string) { writeFile(tb, p, nil) }, ErrNotWritStore, "is empty"},
		{"one byte", func(tb testing.TB, p string) { writeFile(tb, p, []byte{0xED}) }, ErrNotWritStore, "too short"},
		{"random bytes", func(tb testing.TB, p string) { writeFile(tb, p, random) }, ErrNotWritStore, "not a bbolt database"},
		{"small random", func(tb testing.TB, p string) { writeFile(tb, p, random[:3000]) }, ErrNotWritStore, "not a bbolt database"},
		{"JSON text", func(tb testing.TB, p string) {
			writeFile(tb, p, []byte(`{"issuer":"https://writ.example","agents":[]}`+"\n"))
		}, ErrNotWritStore, "not a bbolt database"},
		{"bbolt file with other buckets", func(tb testing.TB, p string) {
			foreignBolt(tb, p, nil, "users", "sessions")
		}, ErrNotWritStore, "without writ's meta bucket"},
		{"bbolt file with its own meta bucket", func(tb testing.TB, p string) {
			foreignBolt(tb, p, nil, "users", "meta")
		}, ErrNotWritStore, "lacks the \"writ\" magic"},
		{"bbolt file without a synced freelist", func(tb testing.TB, p string) {
			// etcd writes these; a read-write open would rewrite the freelist.
			foreignBolt(tb, p, &bolt.Options{NoFreelistSync: true}, "key", "lease")
		}, ErrNotWritStore, ""},
		{"bbolt meta bucket without magic", func(tb testing.TB, p string) {
			writeStore(tb, p, func(m *bolt.Bucket) error { return m.Put(keyMagic, []byte("nope")) })
		}, ErrNotWritStore, "magic"},
		{"schema missing", func(tb testing.TB, p string) {
			writeStore(tb, p, func(m *bolt.Bucket) error { return m.Delete(keySchema) })
		}, ErrNotWritStore, "schema version is missing"},
		{"newer schema", func(tb testing.TB, p string) {
			writeStore(tb, p, func(m *bolt.Bucket) error { return m.Put(keySchema, schemaValue(schemaVersion+1)) })
		}, ErrSchemaTooNew, fmt.Sprintf("has schema %d, this writ understands up to %d; upgrade writ", schemaVersion+1, schemaVersion)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for name, open := range map[string]func(string, Options) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
				path := filepath.Join(t.TempDir(), "writ.db")
				tc.make(t, path)
				before := fileHash(t, path)
				s, err := open(path, Options{Timeout: time.Second})
				if err == nil {
					s.Close()
					t.Fatalf("%s opened it", name)
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("%s: %v, want %v", name, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("%s: %q should name %s and say %q", name, err, path, tc.wantMsg)
				}
				if fileHash(t, path) != before {
					t.Errorf("%s changed the file", name)
				}
			}
		})
	}
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrNotWritStore) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open of a directory: %v", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	if _, err := OpenReadOnly(path, Options{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("OpenReadOnly of a missing store: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created the store")
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	appendAudit(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, path)
	s, err = OpenReadOnly(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := broker.VerifyAuditLog(t.Context(), s); n != 2 || err != nil {
		t.Errorf("VerifyAudit = %d, %v", n, err)
	}
	for name, run := range map[string]func() error{
		"Update": func() error { return s.Update(t.Context(), func(broker.Tx) error { return nil }) },
		"Batch":  func() error { return s.Batch(t.Context(), func(broker.Tx) error { return nil }) },
	} {
		if err := run(); !errors.Is(err, ErrReadOnlyTx) {
			t.Errorf("%s on a read-only store: %v", name, err)
		}
	}
	// Two read-only opens share the file.
	s2, err := OpenReadOnly(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Errorf("second OpenReadOnly: %v", err)
	} else {
		s2.Close()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fileHash(t, path) != before {
		t.Error("a read-only open changed the file")
	}
}

func checkLocked(t *testing.T, path string, err error, elapsed time.Duration) {
	t.Helper()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("store %s is locked by another process (is another writ running?)", path)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if elapsed > 10*time.Second {
		t.Errorf("took %v to give up", elapsed)
	}
}

// TestOpenLockedInProcess: bbolt's flock belongs to the open file
// description, so a second open in the same process waits like another
// process would.
func TestOpenLockedInProcess(t *testing.T) {
	s := MustOpen(t)
	for name, open := range map[string]func(string, Options) (*Store, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
		start := time.Now()
		s2, err := open(s.Path(), Options{Timeout: 200 * time.Millisecond})
		if err == nil {
			s2.Close()
		}
		t.Run(name, func(t *testing.T) { checkLocked(t, s.Path(), err, time.Since(start)) })
	}
}

// holdEnv makes the test binary, re-executed, hold the store at its value
// open until its stdin closes.
const holdEnv = "WRIT_STORE_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

func hold(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func TestOpenLockedByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder: %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	start := time.Now()
	s, err := Open(path, Options{Timeout: 300 * time.Millisecond})
	if err == nil {
		s.Close()
	}
	checkLocked(t, path, err, time.Since(start))
}
