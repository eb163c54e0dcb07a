package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
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

func TestForEachAudit(t *testing.T) {
	s := MustOpen(t)
	appendAudit(t, s, 10)
	seqs := func(each func(uint64, func(*broker.AuditEntry) error) error, from uint64) []uint64 {
		var out []uint64
		err := each(from, func(e *broker.AuditEntry) error {
			out = append(out, e.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	view(t, s, func(tx broker.TxReader) error {
		cases := []struct {
			name string
			got  []uint64
			want []uint64
		}{
			{"forward from 0", seqs(tx.ForEachAudit, 0), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"forward from 8", seqs(tx.ForEachAudit, 8), []uint64{8, 9, 10}},
			{"forward past the end", seqs(tx.ForEachAudit, 11), nil},
			{"reverse from newest", seqs(tx.ForEachAuditReverse, 0), []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"reverse from 3", seqs(tx.ForEachAuditReverse, 3), []uint64{3, 2, 1}},
			{"reverse past the end", seqs(tx.ForEachAuditReverse, 99), []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		}
		for _, tc := range cases {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
			}
		}
		// The chain verifies over ForEachAudit.
		var v broker.ChainVerifier
		if err := tx.ForEachAudit(1, v.Check); err != nil || v.Count != 10 {
			t.Errorf("chain: %d entries, %v", v.Count, err)
		}
		// Stopping early returns fn's error.
		stop := errors.New("stop")
		n := 0
		err := tx.ForEachAuditReverse(0, func(*broker.AuditEntry) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 { //nolint:errorlint
			t.Errorf("stopping early: %v after %d", err, n)
		}
		return nil
	})
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

func TestSignals(t *testing.T) {
	s := MustOpen(t)
	view(t, s, func(tx broker.TxReader) error {
		if n, err := tx.LastSignalSeq(); n != 0 || err != nil {
			t.Errorf("LastSignalSeq of an empty feed = %d, %v", n, err)
		}
		return nil
	})
	var sent []broker.Signal
	update(t, s, func(tx broker.Tx) error {
		for i := range 5 {
			sig := broker.Signal{Kind: broker.SignalSessionRevoked, At: at(time.Duration(i) * time.Second), GrantID: "g", InitiatingEntity: "admin", Claims: map[string]any{"n": float64(i)}}
			if err := tx.AppendSignal(&sig); err != nil {
				return err
			}
			if sig.Seq != uint64(i+1) {
				t.Errorf("signal %d got seq %d", i, sig.Seq)
			}
			sent = append(sent, sig)
		}
		return nil
	})
	view(t, s, func(tx broker.TxReader) error {
		cases := []struct {
			after uint64
			limit int
			want  []broker.Signal
		}{
			{0, 100, sent},
			{0, 2, sent[:2]},
			{2, 2, sent[2:4]},
			{4, 10, sent[4:]},
			{5, 10, []broker.Signal{}},
			{0, 0, []broker.Signal{}},
			{^uint64(0), 10, []broker.Signal{}},
		}
		for _, tc := range cases {
			got, err := tx.Signals(tc.after, tc.limit)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Signals(%d, %d) = %+v, %v; want %+v", tc.after, tc.limit, got, err, tc.want)
			}
		}
		if n, err := tx.LastSignalSeq(); n != 5 || err != nil {
			t.Errorf("LastSignalSeq = %d, %v; want 5", n, err)
		}
		return nil
	})
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
