package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

func appendAudit(tb testing.TB, s broker.Store, n int) {
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

// newestAudit is the newest entry of the log, or nil.
func newestAudit(tx broker.TxReader) (*broker.AuditEntry, error) {
	var last *broker.AuditEntry
	err := tx.ForEachAuditReverse(0, func(e *broker.AuditEntry) error {
		last = e
		return errStop
	})
	if err == errStop { //nolint:errorlint
		err = nil
	}
	return last, err
}

func (c *conformance) auditChain(t *testing.T) {
	s := c.open(t)
	var first, second broker.AuditEntry
	update(t, s, func(tx broker.Tx) error {
		if e, err := newestAudit(tx); e != nil || err != nil {
			t.Errorf("newest entry of an empty log = %v, %v", e, err)
		}
		first = broker.AuditEntry{At: t0, Kind: broker.AuditRequestSubmitted, Actor: "agent:a"}
		if err := tx.AppendAudit(&first); err != nil {
			return err
		}
		second = broker.AuditEntry{At: t0, Kind: broker.AuditDecision, Actor: "operator:x", Operator: &alice, Data: json.RawMessage(`{"k":"v"}`)}
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
		// An entry reads back as it was sealed: same fields, same hash,
		// and the hash covers the bytes read back.
		var got *broker.AuditEntry
		if err := tx.ForEachAudit(2, func(e *broker.AuditEntry) error { got = e; return errStop }); err != errStop { //nolint:errorlint
			t.Fatalf("ForEachAudit: %v", err)
		}
		if !reflect.DeepEqual(got, &second) {
			t.Errorf("entry 2 read back as\n %+v\nwant %+v", got, &second)
		}
		if h, err := got.ComputeHash(); err != nil || h != second.Hash {
			t.Errorf("entry 2 hash over what was read = %q, %v; want %q", h, err, second.Hash)
		}
		return nil
	})
	n, err := broker.VerifyAuditLog(t.Context(), s)
	if err != nil || n != 5 {
		t.Errorf("VerifyAuditLog = %d, %v; want 5, nil", n, err)
	}
}

func (c *conformance) auditRanges(t *testing.T) {
	s := c.open(t)
	appendAudit(t, s, 10)
	seqs := func(each func(uint64, func(*broker.AuditEntry) error) error, from uint64) []uint64 {
		var out []uint64
		if err := each(from, func(e *broker.AuditEntry) error { out = append(out, e.Seq); return nil }); err != nil {
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
		var v broker.ChainVerifier
		if err := tx.ForEachAudit(1, v.Check); err != nil || v.Count != 10 {
			t.Errorf("chain: %d entries, %v", v.Count, err)
		}
		n := 0
		err := tx.ForEachAuditReverse(0, func(*broker.AuditEntry) error {
			if n++; n == 2 {
				return errStop
			}
			return nil
		})
		if err != errStop || n != 2 { //nolint:errorlint
			t.Errorf("stopping early: %v after %d", err, n)
		}
		return nil
	})
}

func (c *conformance) auditAppendWhileVisiting(t *testing.T) {
	s := c.open(t)
	appendAudit(t, s, 3)
	visited := 0
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachAudit(1, func(e *broker.AuditEntry) error {
			if visited++; visited > 10 {
				return errors.New("ForEachAudit visits the entries fn appends: it would never end")
			}
			return tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditGrantUsed, Message: fmt.Sprintf("after %d", e.Seq)})
		})
	})
	if visited != 3 {
		t.Errorf("visited %d entries, want the 3 that existed", visited)
	}
	var reverse []uint64
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachAuditReverse(2, func(e *broker.AuditEntry) error {
			if reverse = append(reverse, e.Seq); len(reverse) > 10 {
				return errors.New("ForEachAuditReverse does not end")
			}
			return tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditGrantUsed})
		})
	})
	if want := []uint64{2, 1}; !reflect.DeepEqual(reverse, want) {
		t.Errorf("visited in reverse while appending %v, want %v", reverse, want)
	}
	if n, err := broker.VerifyAuditLog(t.Context(), s); n != 8 || err != nil {
		t.Errorf("VerifyAuditLog = %d, %v; want 8", n, err)
	}
}

func (c *conformance) auditVerifyCancelled(t *testing.T) {
	s := c.open(t)
	appendAudit(t, s, 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := broker.VerifyAuditLog(ctx, s)
	if _, read := errors.AsType[*broker.AuditReadError](err); !read || !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyAuditLog with a cancelled context: %v", err)
	}
}

func (c *conformance) signals(t *testing.T) {
	s := c.open(t)
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
			if n, err := tx.LastSignalSeq(); n != sig.Seq || err != nil {
				t.Errorf("LastSignalSeq inside the writing tx = %d, %v; want %d", n, err, sig.Seq)
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
			{0, -1, []broker.Signal{}},
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
	update(t, s, func(tx broker.Tx) error {
		sig := broker.Signal{Kind: broker.SignalSessionRevoked, All: true, Epoch: 2}
		if err := tx.AppendSignal(&sig); err != nil || sig.Seq != 6 {
			t.Errorf("signal of a later transaction: seq %d, %v; want 6", sig.Seq, err)
		}
		return nil
	})
}
