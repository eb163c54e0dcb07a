package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/store"
)

var dt0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// drawTime is one of a few instants, so keys collide and orders tie, or
// the zero Time (due first).
func drawTime(t *rapid.T, label string) time.Time {
	k := rapid.IntRange(-3, 4).Draw(t, label)
	if k == -3 {
		return time.Time{}
	}
	return dt0.Add(time.Duration(k) * time.Minute)
}

var errDiffFail = errors.New("the transaction fails")

// drawWrite draws one write to apply to both stores.
func drawWrite(t *rapid.T) (string, func(broker.Tx) error) {
	switch rapid.IntRange(0, 9).Draw(t, "op") {
	case 0, 1:
		r := &broker.TaskRequest{
			ID:        rapid.SampledFrom([]string{"r1", "r2", "r3", "r4"}).Draw(t, "request"),
			AgentID:   "a",
			State:     rapid.SampledFrom([]broker.RequestState{broker.RequestPending, broker.RequestPending, broker.RequestApproved, broker.RequestExpired}).Draw(t, "request state"),
			CreatedAt: drawTime(t, "created"), Deadline: drawTime(t, "deadline"),
		}
		return "put request " + r.ID, func(tx broker.Tx) error { return tx.PutRequest(r) }
	case 2, 3:
		g := &broker.Grant{
			ID:        rapid.SampledFrom([]string{"g1", "g2", "g3", "g4"}).Draw(t, "grant"),
			AgentID:   "a",
			State:     rapid.SampledFrom([]broker.GrantState{broker.GrantActive, broker.GrantActive, broker.GrantRevoked, broker.GrantExpired}).Draw(t, "grant state"),
			CreatedAt: drawTime(t, "created"), ExpiresAt: drawTime(t, "expires"),
		}
		return "put grant " + g.ID, func(tx broker.Tx) error { return tx.PutGrant(g) }
	case 4:
		before := drawTime(t, "before")
		return "expire due", func(tx broker.Tx) error {
			n := 0
			return tx.ForEachDue(before, func(d broker.Due) error {
				if n++; n > 100 {
					return errors.New("ForEachDue does not end")
				}
				if d.Kind == broker.DueGrant {
					g, err := tx.Grant(d.ID)
					if err != nil {
						return err
					}
					g.State = broker.GrantExpired
					return tx.PutGrant(g)
				}
				r, err := tx.Request(d.ID)
				if err != nil {
					return err
				}
				r.State = broker.RequestExpired
				return tx.PutRequest(r)
			})
		}
	case 5:
		msg := rapid.StringN(0, 8, -1).Draw(t, "message")
		return "audit", func(tx broker.Tx) error {
			return tx.AppendAudit(&broker.AuditEntry{At: dt0, Kind: broker.AuditGrantUsed, Message: msg})
		}
	case 6:
		grant := rapid.SampledFrom([]string{"g1", "g2"}).Draw(t, "signal grant")
		return "signal", func(tx broker.Tx) error {
			return tx.AppendSignal(&broker.Signal{Kind: broker.SignalSessionRevoked, GrantID: grant})
		}
	case 7:
		ns := rapid.SampledFrom(broker.RecordNamespaces).Draw(t, "namespace")
		id := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "record")
		if rapid.Bool().Draw(t, "delete") {
			return "delete record", func(tx broker.Tx) error { return tx.DeleteRecord(ns, id) }
		}
		v := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "value")
		return "put record", func(tx broker.Tx) error { return tx.PutRecord(ns, id, v) }
	case 8:
		s := broker.AgentState{ID: rapid.SampledFrom([]string{"a", "b"}).Draw(t, "agent"), Epoch: rapid.Uint64Range(0, 3).Draw(t, "epoch")}
		return "agent state", func(tx broker.Tx) error { return tx.PutAgentState(s) }
	default:
		k := broker.SigningKey{ID: rapid.SampledFrom([]string{"k1", "k2"}).Draw(t, "kid"), CreatedAt: drawTime(t, "key created")}
		if rapid.Bool().Draw(t, "delete key") {
			return "delete key", func(tx broker.Tx) error { return tx.DeleteSigningKey(k.ID) }
		}
		return "put key", func(tx broker.Tx) error { return tx.PutSigningKey(k) }
	}
}

// observe is everything a reader can see of a store, as JSON.
func observe(st broker.Store) (string, error) {
	var o struct {
		Issuer                 broker.IssuerState
		Agents                 []broker.AgentState
		Pending                []*broker.TaskRequest
		Active, All            []*broker.Grant
		Due                    []broker.Due
		Audit                  []*broker.AuditEntry
		Signals                []broker.Signal
		LastSignal             uint64
		Keys                   []broker.SigningKey
		Records                map[string][]string
		Requests, GrantsByGets []any
	}
	err := st.View(context.Background(), func(tx broker.TxReader) error {
		var err error
		if o.Issuer, err = tx.Issuer(); err != nil {
			return err
		}
		collect := []error{
			tx.ForEachAgentState(func(s broker.AgentState) error { o.Agents = append(o.Agents, s); return nil }),
			tx.ForEachPending(func(r *broker.TaskRequest) error { o.Pending = append(o.Pending, r); return nil }),
			tx.ForEachActiveGrant(func(g *broker.Grant) error { o.Active = append(o.Active, g); return nil }),
			tx.ForEachGrant(func(g *broker.Grant) error { o.All = append(o.All, g); return nil }),
			tx.ForEachDue(dt0.Add(time.Hour), func(d broker.Due) error { o.Due = append(o.Due, d); return nil }),
			tx.ForEachAudit(0, func(e *broker.AuditEntry) error { o.Audit = append(o.Audit, e); return nil }),
		}
		if err := errors.Join(collect...); err != nil {
			return err
		}
		for _, id := range []string{"r1", "r2", "r3", "r4"} {
			r, err := tx.Request(id)
			o.Requests = append(o.Requests, r, broker.ErrorCode(err))
		}
		for _, id := range []string{"g1", "g2", "g3", "g4"} {
			g, err := tx.Grant(id)
			o.GrantsByGets = append(o.GrantsByGets, g, broker.ErrorCode(err))
		}
		if o.Signals, err = tx.Signals(0, 1000); err != nil {
			return err
		}
		if o.LastSignal, err = tx.LastSignalSeq(); err != nil {
			return err
		}
		if o.Keys, err = tx.SigningKeys(); err != nil {
			return err
		}
		o.Records = map[string][]string{}
		for _, ns := range broker.RecordNamespaces {
			if err := tx.ForEachRecord(ns, func(id string, v []byte) error {
				o.Records[ns] = append(o.Records[ns], fmt.Sprintf("%s=%x", id, v))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	b, jerr := json.Marshal(o)
	return string(b), errors.Join(err, jerr)
}

// TestStoresAgree applies the same random transactions (some of them
// failing) to the bbolt store and to brokertest's in-memory store, and
// checks that a reader sees the same thing in both after each one: the
// conformance suite's cases, generalised.
func TestStoresAgree(t *testing.T) {
	dir := t.TempDir()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		disk, err := store.Open(filepath.Join(dir, fmt.Sprintf("writ-%d.db", n)), store.Options{NoSync: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer disk.Close()
		mem := brokertest.NewStore()
		stores := []broker.Store{disk, mem}
		for step := range rapid.IntRange(1, 12).Draw(rt, "transactions") {
			var names []string
			var writes []func(broker.Tx) error
			for range rapid.IntRange(1, 4).Draw(rt, "writes") {
				name, w := drawWrite(rt)
				names, writes = append(names, name), append(writes, w)
			}
			fail := rapid.IntRange(0, 4).Draw(rt, "fail") == 0
			batch := rapid.Bool().Draw(rt, "batch")
			var errs [2]error
			for i, st := range stores {
				run := st.Update
				if batch {
					run = st.Batch
				}
				errs[i] = run(context.Background(), func(tx broker.Tx) error {
					for _, w := range writes {
						if err := w(tx); err != nil {
							return err
						}
					}
					if fail {
						return errDiffFail
					}
					return nil
				})
			}
			if broker.ErrorCode(errs[0]) != broker.ErrorCode(errs[1]) || errors.Is(errs[0], errDiffFail) != errors.Is(errs[1], errDiffFail) {
				rt.Fatalf("step %d %q: bbolt %v, memory %v", step, names, errs[0], errs[1])
			}
			want, err := observe(disk)
			if err != nil {
				rt.Fatalf("observe bbolt: %v", err)
			}
			got, err := observe(mem)
			if err != nil {
				rt.Fatalf("observe memory: %v", err)
			}
			if got != want {
				rt.Fatalf("step %d %q: the stores disagree\nbbolt  %s\nmemory %s", step, names, want, got)
			}
		}
	})
}
