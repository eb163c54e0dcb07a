package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

func appendAudit(tb testing.TB, s *Store, n int) {
	tb.Helper()
	update(tb, s, func(tx broker.Tx) error {
		for i := range n {
			e := &broker.AuditEntry{
				At: at(time.Duration(i) * time.Second), Kind: broker.AuditTokenIssued, Actor: "agent:a",
				GrantID: "g", Message: "issued", Data: json.RawMessage(`{"n":1}`),
			}
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestAppendAudit(t *testing.T) {
	s := MustOpen(t)
	var first, second broker.AuditEntry
	update(t, s, func(tx broker.Tx) error {
		if e, err := newestAudit(tx); e != nil || err != nil {
			t.Errorf("newest entry of an empty log = %v, %v", e, err)
		}
		first = broker.AuditEntry{At: t0, Kind: broker.AuditRequestSubmitted, Actor: "agent:a"}
		if err := tx.AppendAudit(&first); err != nil {
			return err
		}
		second = broker.AuditEntry{At: t0, Kind: broker.AuditDecision, Actor: "operator:x"}
		return tx.AppendAudit(&second)
	})
	if first.Seq != 1 || first.Prev != "" || first.Hash == "" {
		t.Errorf("first entry: seq %d prev %q hash %q", first.Seq, first.Prev, first.Hash)
	}
	if second.Seq != 2 || second.Prev != first.Hash {
		t.Errorf("second entry: seq %d prev %q, want 2 and %q", second.Seq, second.Prev, first.Hash)
	}
	appendAudit(t, s, 3) // a later transaction continues the chain
	view(t, s, func(tx broker.TxReader) error {
		last, err := newestAudit(tx)
		if err != nil || last == nil || last.Seq != 5 {
			t.Errorf("newest entry = %+v, %v; want seq 5", last, err)
		}
		return nil
	})
	n, err := broker.VerifyAuditLog(t.Context(), s)
	if err != nil || n != 5 {
		t.Errorf("VerifyAudit = %d, %v; want 5, nil", n, err)
	}
}

// corruptAudit rewrites the stored value of one audit entry with bbolt
// directly, as someone editing the file would.
func corruptAudit(tb testing.TB, path string, seq uint64, edit func([]byte) []byte) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketAudit)
		v := bytes.Clone(b.Get(seqKey(seq)))
		return b.Put(seqKey(seq), edit(v))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	cases := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"content changed", func(v []byte) []byte { return bytes.Replace(v, []byte("issued"), []byte("ISSUED"), 1) }},
		{"not JSON any more", func(v []byte) []byte { v[0] = 'X'; return v }},
		{"hash rewritten to match", func(v []byte) []byte {
			prev, _, body, reason := auditLinks(v)
			if reason != "" {
				t.Fatal(reason)
			}
			var e broker.AuditEntry
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			e.Message = "forged"
			if err := e.Seal(prev); err != nil {
				t.Fatal(err)
			}
			return encodeAudit(e.Prev, e.Hash, e.Body)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "writ.db")
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			appendAudit(t, s, 7)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			corruptAudit(t, path, 4, tc.edit)
			s, err = OpenReadOnly(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n, err := broker.VerifyAuditLog(t.Context(), s)
			ce, ok := errors.AsType[*broker.ChainError](err)
			wantSeq := uint64(4)
			if tc.name == "hash rewritten to match" {
				wantSeq = 5 // the forged entry verifies alone; the next link breaks
			}
			if !ok || ce.Seq != wantSeq {
				t.Fatalf("VerifyAudit = %d, %v; want a ChainError at %d", n, err, wantSeq)
			}
			if n != wantSeq-1 {
				t.Errorf("verified %d entries before the break, want %d", n, wantSeq-1)
			}
			// Every walk of the log (the console's newest-first listing
			// too) calls an unreadable entry a broken chain, never
			// something else.
			if tc.name == "not JSON any more" {
				err := s.View(t.Context(), func(tx broker.TxReader) error {
					return tx.ForEachAuditReverse(0, func(*broker.AuditEntry) error { return nil })
				})
				if ce, ok := errors.AsType[*broker.ChainError](err); !ok || ce.Seq != 4 {
					t.Errorf("reverse walk over a corrupted entry: %v, want a ChainError at 4", err)
				}
			}
		})
	}
}

// TestSignalSeqSurvivesPruning: deleting old signals never lets a Seq be
// reused, since guards remember the last one they saw.
func TestSignalSeqSurvivesPruning(t *testing.T) {
	s := MustOpen(t)
	update(t, s, func(tx broker.Tx) error {
		for range 3 {
			if err := tx.AppendSignal(&broker.Signal{Kind: broker.SignalSessionRevoked, All: true}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bucketSignals)
		for seq := uint64(1); seq <= 3; seq++ {
			if err := b.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx broker.Tx) error {
		sig := broker.Signal{Kind: broker.SignalSessionRevoked, All: true}
		if err := tx.AppendSignal(&sig); err != nil {
			return err
		}
		if sig.Seq != 4 {
			t.Errorf("seq after pruning = %d, want 4", sig.Seq)
		}
		return nil
	})
}

// TestAuditFormatsVerify: entries stored before the stored bytes were kept
// (version 0) still verify, a version-1 entry with a field this writ does
// not know verifies (the hash covers the stored bytes, not a re-encoding),
// and the chain runs across both.
func TestAuditFormatsVerify(t *testing.T) {
	s := MustOpen(t)
	update(t, s, func(btx broker.Tx) error {
		b, err := btx.(*tx).writeBucket(bucketAudit)
		if err != nil {
			return err
		}
		legacy := &broker.AuditEntry{Seq: 1, Kind: broker.AuditFrozen, Actor: "system", Message: "old"}
		legacy.Body = nil
		h, err := legacy.ComputeHash()
		if err != nil {
			return err
		}
		legacy.Hash = h
		if err := putJSON(b, "audit entry", seqKey(1), legacy); err != nil {
			return err
		}
		// A newer writ's entry, with a field this one lacks.
		body := []byte(`{"seq":2,"at":"2026-12-02T10:00:00Z","kind":"issuer.unfrozen","actor":"system","message":"new","added_later":{"x":1},"prev":"","hash":""}`)
		next := &broker.AuditEntry{Prev: legacy.Hash, Body: body}
		h2, err := next.ComputeHash()
		if err != nil {
			return err
		}
		return putJSON(b, "audit entry", seqKey(2), storedAudit{V: auditV1, Prev: legacy.Hash, Hash: h2, Entry: body})
	})
	appendAudit(t, s, 1)
	if n, err := broker.VerifyAuditLog(t.Context(), s); n != 3 || err != nil {
		t.Fatalf("VerifyAuditLog = %d, %v; want 3 entries verified", n, err)
	}
}

// newestAudit is the newest entry of the log, or nil.
func newestAudit(tx broker.TxReader) (*broker.AuditEntry, error) {
	var last *broker.AuditEntry
	err := tx.ForEachAuditReverse(0, func(e *broker.AuditEntry) error {
		last = e
		return errDone
	})
	if err == errDone {
		err = nil
	}
	return last, err
}

var errDone = errors.New("done")

// putJSON writes the JSON of v at key, as writ wrote every record before
// stored types (version 0). what names the record for errors.
func putJSON(b *bolt.Bucket, what string, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", what, key, err)
	}
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("write %s %q: %w", what, key, err)
	}
	return nil
}
