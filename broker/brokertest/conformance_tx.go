package brokertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// everything writes one of each kind, for the rollback tests.
func writeEverything(tx broker.Tx) error {
	for _, write := range []func() error{
		func() error { return tx.PutIssuer(broker.IssuerState{Frozen: true, Epoch: 9}) },
		func() error { return tx.PutAgentState(broker.AgentState{ID: "a", Epoch: 3}) },
		func() error {
			return tx.PutRequest(&broker.TaskRequest{ID: "r1", State: broker.RequestPending, CreatedAt: t0, Deadline: at(time.Minute)})
		},
		func() error { return tx.PutDecision(&broker.Decision{ID: "d1", RequestID: "r1"}) },
		func() error {
			return tx.PutGrant(&broker.Grant{ID: "g1", AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: at(time.Hour)})
		},
		func() error { return tx.PutToken(&broker.Token{JTI: "j1", GrantID: "g1"}) },
		func() error { return tx.PutRevocation(&broker.Revocation{ID: "v1", Scope: broker.RevokeAll}) },
		func() error { return tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued}) },
		func() error { return tx.AppendSignal(&broker.Signal{Kind: broker.SignalSessionRevoked, All: true}) },
		func() error { return tx.PutSigningKey(broker.SigningKey{ID: "k1", Alg: "ES256", CreatedAt: t0}) },
		func() error { return tx.PutRecord(broker.RecordSSFStream, "s1", []byte("{}")) },
	} {
		if err := write(); err != nil {
			return err
		}
	}
	return nil
}

// wantEmpty fails unless s holds nothing writeEverything writes.
func wantEmpty(tb testing.TB, s broker.Store) {
	tb.Helper()
	view(tb, s, func(tx broker.TxReader) error {
		found := map[string]error{}
		if st, err := tx.Issuer(); err != nil || !reflect.DeepEqual(st, broker.IssuerState{}) {
			tb.Errorf("issuer state: %+v, %v", st, err)
		}
		if st, err := tx.AgentState("a"); err != nil || !reflect.DeepEqual(st, broker.AgentState{ID: "a"}) {
			tb.Errorf("agent state: %+v, %v", st, err)
		}
		_, found["request"] = tx.Request("r1")
		_, found["decision"] = tx.Decision("d1")
		_, found["grant"] = tx.Grant("g1")
		_, found["token"] = tx.Token("j1")
		_, found["record"] = tx.Record(broker.RecordSSFStream, "s1")
		for what, err := range found {
			if broker.ErrorCode(err) != broker.ENOTFOUND {
				tb.Errorf("%s: %v, want ENOTFOUND", what, err)
			}
		}
		if e, err := newestAudit(tx); e != nil || err != nil {
			tb.Errorf("audit: %+v, %v", e, err)
		}
		if n, err := tx.LastSignalSeq(); n != 0 || err != nil {
			tb.Errorf("LastSignalSeq: %d, %v", n, err)
		}
		if keys, err := tx.SigningKeys(); len(keys) != 0 || err != nil {
			tb.Errorf("signing keys: %+v, %v", keys, err)
		}
		return nil
	})
	if got := observeIndexes(tb, s); !reflect.DeepEqual(got, indexView{}) {
		tb.Errorf("indexes: %+v", got)
	}
}

// rollback: when fn fails nothing is written, and fn's own error comes
// back as is, for Update and Batch.
func (c *conformance) rollback(t *testing.T) {
	boom := errors.New("boom")
	for name, run := range map[string]func(broker.Store, context.Context, func(broker.Tx) error) error{
		"Update": broker.Store.Update,
		"Batch":  broker.Store.Batch,
	} {
		t.Run(name, func(t *testing.T) {
			s := c.open(t)
			err := run(s, t.Context(), func(tx broker.Tx) error {
				if err := writeEverything(tx); err != nil {
					return err
				}
				// Reads inside the failing transaction see its writes.
				if _, err := tx.Grant("g1"); err != nil {
					t.Errorf("own write not visible inside the transaction: %v", err)
				}
				return boom
			})
			if err != boom { //nolint:errorlint // fn's error must come back as is
				t.Fatalf("%s returned %v, want fn's error itself", name, err)
			}
			wantEmpty(t, s)
			// A later transaction starts from the state before the failed one.
			if err := run(s, t.Context(), writeEverything); err != nil {
				t.Fatalf("%s after a failed one: %v", name, err)
			}
			view(t, s, func(tx broker.TxReader) error {
				if e, err := newestAudit(tx); err != nil || e == nil || e.Seq != 1 {
					t.Errorf("audit after a failed then a good transaction: %+v, %v; want seq 1", e, err)
				}
				if n, err := tx.LastSignalSeq(); n != 1 || err != nil {
					t.Errorf("LastSignalSeq: %d, %v; want 1", n, err)
				}
				return nil
			})
		})
	}
}

// rollbackOnPanic: an Update whose fn panics writes nothing, the panic
// reaches the caller, and the store still works.
func (c *conformance) rollbackOnPanic(t *testing.T) {
	s := c.open(t)
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("the panic did not reach Update's caller")
			}
		}()
		_ = s.Update(t.Context(), func(tx broker.Tx) error {
			if err := writeEverything(tx); err != nil {
				return err
			}
			panic("fn panicked")
		})
	}()
	wantEmpty(t, s)
	update(t, s, writeEverything)
}

// batchRetry: Batch may run fn more than once (the bbolt store runs a
// failed call again alone). Whatever it does, only a run that succeeded is
// committed, and a failed run leaves nothing behind.
func (c *conformance) batchRetry(t *testing.T) {
	s := c.open(t)
	runs := 0
	err := s.Batch(t.Context(), func(tx broker.Tx) error {
		runs++
		if err := tx.PutRecord(broker.RecordSSFCursor, "run", fmt.Appendf(nil, "%d", runs)); err != nil {
			return err
		}
		if err := tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued, Message: fmt.Sprint(runs)}); err != nil {
			return err
		}
		if runs == 1 {
			return errors.New("first run fails")
		}
		return nil
	})
	view(t, s, func(tx broker.TxReader) error {
		v, rerr := tx.Record(broker.RecordSSFCursor, "run")
		var entries []string
		if err := tx.ForEachAudit(1, func(e *broker.AuditEntry) error { entries = append(entries, e.Message); return nil }); err != nil {
			return err
		}
		switch {
		case err != nil && runs != 1:
			t.Errorf("Batch ran fn %d times and still failed: %v", runs, err)
		case err != nil && (broker.ErrorCode(rerr) != broker.ENOTFOUND || len(entries) != 0):
			t.Errorf("a failed Batch wrote record %q (%v) and audit %q", v, rerr, entries)
		case err == nil && (string(v) != fmt.Sprint(runs) || !reflect.DeepEqual(entries, []string{fmt.Sprint(runs)})):
			t.Errorf("after %d runs: record %q (%v), audit %q; want only the last run's writes", runs, v, rerr, entries)
		}
		return nil
	})
	if n, err := broker.VerifyAuditLog(t.Context(), s); err != nil {
		t.Errorf("VerifyAuditLog = %d, %v", n, err)
	}
	// A panicking fn either panics to the caller or fails the call; it
	// writes nothing either way, and the store still works.
	func() {
		defer func() { _ = recover() }()
		err := s.Batch(t.Context(), func(tx broker.Tx) error {
			if err := tx.PutToken(&broker.Token{JTI: "panicked"}); err != nil {
				return err
			}
			panic("fn panicked")
		})
		if err == nil {
			t.Error("a panicking Batch function succeeded")
		}
	}()
	update(t, s, func(tx broker.Tx) error {
		if _, err := tx.Token("panicked"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("token of a panicking Batch: %v, want ENOTFOUND", err)
		}
		return nil
	})
}

func (c *conformance) cancelledBeforeStart(t *testing.T) {
	s := c.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	for name, run := range map[string]func() error{
		"View":   func() error { return s.View(ctx, func(broker.TxReader) error { ran = true; return nil }) },
		"Update": func() error { return s.Update(ctx, func(broker.Tx) error { ran = true; return nil }) },
		"Batch":  func() error { return s.Batch(ctx, func(broker.Tx) error { ran = true; return nil }) },
	} {
		if err := run(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	if ran {
		t.Error("fn ran under a cancelled context")
	}
}

// readOnlyView: a View's transaction has no writers in its type; a store
// whose transaction value has them anyway must refuse every one, and
// write nothing.
func (c *conformance) readOnlyView(t *testing.T) {
	s := c.open(t)
	writes := map[string]func(broker.TxWriter) error{
		"PutIssuer":        func(tx broker.TxWriter) error { return tx.PutIssuer(broker.IssuerState{Frozen: true}) },
		"PutAgentState":    func(tx broker.TxWriter) error { return tx.PutAgentState(broker.AgentState{ID: "a"}) },
		"PutRequest":       func(tx broker.TxWriter) error { return tx.PutRequest(&broker.TaskRequest{ID: "r1"}) },
		"PutDecision":      func(tx broker.TxWriter) error { return tx.PutDecision(&broker.Decision{ID: "d1"}) },
		"PutGrant":         func(tx broker.TxWriter) error { return tx.PutGrant(&broker.Grant{ID: "g1"}) },
		"PutToken":         func(tx broker.TxWriter) error { return tx.PutToken(&broker.Token{JTI: "j1"}) },
		"PutRevocation":    func(tx broker.TxWriter) error { return tx.PutRevocation(&broker.Revocation{ID: "v"}) },
		"AppendAudit":      func(tx broker.TxWriter) error { return tx.AppendAudit(&broker.AuditEntry{}) },
		"AppendSignal":     func(tx broker.TxWriter) error { return tx.AppendSignal(&broker.Signal{}) },
		"PutSigningKey":    func(tx broker.TxWriter) error { return tx.PutSigningKey(broker.SigningKey{ID: "k1"}) },
		"DeleteSigningKey": func(tx broker.TxWriter) error { return tx.DeleteSigningKey("k") },
		"PutRecord":        func(tx broker.TxWriter) error { return tx.PutRecord(broker.RecordSSFStream, "s1", []byte("{}")) },
		"DeleteRecord":     func(tx broker.TxWriter) error { return tx.DeleteRecord(broker.RecordSSFStream, "s") },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			err := s.View(t.Context(), func(tx broker.TxReader) error {
				w, ok := tx.(broker.TxWriter)
				if !ok {
					return nil // writers are not even reachable
				}
				if err := write(w); err == nil {
					t.Errorf("%s in View succeeded", name)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	wantEmpty(t, s)
}

func (c *conformance) txUsedAfterItEnds(t *testing.T) {
	s := c.open(t)
	update(t, s, func(tx broker.Tx) error {
		return tx.PutGrant(&broker.Grant{ID: "g", AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: at(time.Hour)})
	})
	var kept broker.TxReader
	view(t, s, func(tx broker.TxReader) error { kept = tx; return nil })
	if _, err := kept.Grant("g"); err == nil || broker.ErrorCode(err) == broker.ENOTFOUND {
		t.Errorf("Grant on an ended View: %v, want a closed-transaction error", err)
	}
	var keptW broker.Tx
	update(t, s, func(tx broker.Tx) error { keptW = tx; return nil })
	if err := keptW.PutToken(&broker.Token{JTI: "late"}); err == nil {
		t.Error("PutToken on an ended Update succeeded")
	}
	view(t, s, func(tx broker.TxReader) error {
		if _, err := tx.Token("late"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("token written through an ended transaction: %v", err)
		}
		return nil
	})
}

// concurrentBatch: concurrent Batch calls each commit exactly once, one
// failing call does not fail the others, and the audit chain holds.
func (c *conformance) concurrentBatch(t *testing.T) {
	s := c.open(t)
	const n = 40
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Batch(t.Context(), func(tx broker.Tx) error {
				id := fmt.Sprintf("j%02d", i)
				if err := tx.PutToken(&broker.Token{JTI: id}); err != nil {
					return err
				}
				if err := tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued, JTI: id}); err != nil {
					return err
				}
				if i == 7 {
					return boom
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := error(nil); i == 7 {
			want = boom
			if err != want { //nolint:errorlint
				t.Errorf("failing call %d: %v, want its own error", i, err)
			}
		} else if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	view(t, s, func(tx broker.TxReader) error {
		for i := range n {
			_, err := tx.Token(fmt.Sprintf("j%02d", i))
			if i == 7 && broker.ErrorCode(err) != broker.ENOTFOUND {
				t.Errorf("token of the failing call: %v, want ENOTFOUND", err)
			}
			if i != 7 && err != nil {
				t.Errorf("token %d: %v", i, err)
			}
		}
		return nil
	})
	if got, err := broker.VerifyAuditLog(t.Context(), s); got != n-1 || err != nil {
		t.Errorf("VerifyAuditLog = %d, %v; want %d", got, err, n-1)
	}
}
