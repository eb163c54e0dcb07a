package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// MustOpen opens a temporary store, closed when the test ends.
func MustOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open temporary store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil {
			tb.Errorf("%v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close temporary store: %v", err)
		}
	})
	return s
}

// update runs fn in an Update and fails the test on error.
func update(tb testing.TB, s *Store, fn func(broker.Tx) error) {
	tb.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		tb.Fatalf("update: %v", err)
	}
}

// view runs fn in a View and fails the test on error.
func view(tb testing.TB, s *Store, fn func(broker.TxReader) error) {
	tb.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		tb.Fatalf("view: %v", err)
	}
}

// bucketKeys returns the keys of a top-level bucket, in order.
func bucketKeys(tb testing.TB, s *Store, name []byte) []string {
	tb.Helper()
	var keys []string
	err := s.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(name).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		tb.Fatalf("keys of %s: %v", name, err)
	}
	return keys
}

// t0 is a fixed instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestUpdateErrorWritesNothing(t *testing.T) {
	s := MustOpen(t)
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx broker.Tx) error {
		if err := tx.PutGrant(&broker.Grant{ID: "g1", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: at(time.Hour)}); err != nil {
			return err
		}
		if err := tx.AppendAudit(&broker.AuditEntry{Kind: broker.AuditTokenIssued}); err != nil {
			return err
		}
		return boom
	})
	if err != boom { //nolint:errorlint // fn's error must come back unwrapped
		t.Fatalf("Update returned %v, want fn's error itself", err)
	}
	view(t, s, func(tx broker.TxReader) error {
		if _, err := tx.Grant("g1"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("grant after a failed update: %v, want ENOTFOUND", err)
		}
		if e, err := newestAudit(tx); e != nil || err != nil {
			t.Errorf("audit after a failed update: %v, %v", e, err)
		}
		return nil
	})
	for _, b := range [][]byte{bucketGrantsActive, bucketDue} {
		if keys := bucketKeys(t, s, b); len(keys) != 0 {
			t.Errorf("%s after a failed update: %q", b, keys)
		}
	}
}

func TestReadOnlyTxRefusesWrites(t *testing.T) {
	s := MustOpen(t)
	writes := map[string]func(broker.Tx) error{
		"PutIssuer":        func(tx broker.Tx) error { return tx.PutIssuer(broker.IssuerState{Frozen: true}) },
		"PutAgentState":    func(tx broker.Tx) error { return tx.PutAgentState(broker.AgentState{ID: "a"}) },
		"PutRequest":       func(tx broker.Tx) error { return tx.PutRequest(&broker.TaskRequest{ID: "r"}) },
		"PutDecision":      func(tx broker.Tx) error { return tx.PutDecision(&broker.Decision{ID: "d"}) },
		"PutGrant":         func(tx broker.Tx) error { return tx.PutGrant(&broker.Grant{ID: "g"}) },
		"PutToken":         func(tx broker.Tx) error { return tx.PutToken(&broker.Token{JTI: "j"}) },
		"PutRevocation":    func(tx broker.Tx) error { return tx.PutRevocation(&broker.Revocation{ID: "v"}) },
		"AppendAudit":      func(tx broker.Tx) error { return tx.AppendAudit(&broker.AuditEntry{}) },
		"AppendSignal":     func(tx broker.Tx) error { return tx.AppendSignal(&broker.Signal{}) },
		"PutSigningKey":    func(tx broker.Tx) error { return tx.PutSigningKey(broker.SigningKey{ID: "k"}) },
		"DeleteSigningKey": func(tx broker.Tx) error { return tx.DeleteSigningKey("k") },
		"PutRecord":        func(tx broker.Tx) error { return tx.PutRecord(broker.RecordSSFStream, "s", []byte("{}")) },
		"DeleteRecord":     func(tx broker.Tx) error { return tx.DeleteRecord(broker.RecordSSFStream, "s") },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			// A read-only transaction has no writers in its type; the
			// store refuses them even if a caller reaches them anyway.
			err := s.View(context.Background(), func(tx broker.TxReader) error { return write(tx.(broker.Tx)) })
			if !errors.Is(err, ErrReadOnlyTx) {
				t.Errorf("%s in View: %v, want ErrReadOnlyTx", name, err)
			}
		})
	}
}

func TestOpenRefusesAStoreReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{NoSync: true})
	if !errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("open of a 0644 store: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
	s.Close()
}
