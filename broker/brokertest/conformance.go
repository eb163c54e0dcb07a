package brokertest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// RunConformance checks that a broker.Store keeps the contract the domain
// relies on: not-found errors, round trips of every record type, the
// indexes and their order, the audit chain, the signal sequence, records,
// all-or-nothing transactions, cancelled contexts and read-only views.
// open returns a new, empty store that the caller cleans up (tb.Cleanup).
// Both package store (bbolt) and this package's Store run it.
func RunConformance(t *testing.T, open func(testing.TB) broker.Store) {
	c := &conformance{open: open}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"NotFound", c.notFound},
		{"ZeroValues", c.zeroValues},
		{"RoundTrip", c.roundTrip},
		{"CopiesOwnedByCaller", c.copies},
		{"InvalidWrites", c.invalidWrites},
		{"SigningKeys", c.signingKeys},
		{"Records", c.records},
		{"RequestIndexes", c.requestIndexes},
		{"GrantIndexes", c.grantIndexes},
		{"ForEachOrder", c.forEachOrder},
		{"DueOrder", c.dueOrder},
		{"DuePutInside", c.duePutInside},
		{"DueMovedLater", c.dueMovedLater},
		{"RevokeWhileVisitingActiveGrants", c.revokeWhileVisiting},
		{"AuditChain", c.auditChain},
		{"AuditRanges", c.auditRanges},
		{"AuditAppendWhileVisiting", c.auditAppendWhileVisiting},
		{"AuditVerifyCancelled", c.auditVerifyCancelled},
		{"Signals", c.signals},
		{"Rollback", c.rollback},
		{"RollbackOnPanic", c.rollbackOnPanic},
		{"BatchRetry", c.batchRetry},
		{"CancelledBeforeStart", c.cancelledBeforeStart},
		{"ReadOnlyView", c.readOnlyView},
		{"TxUsedAfterItEnds", c.txUsedAfterItEnds},
		{"ConcurrentBatch", c.concurrentBatch},
	} {
		t.Run(tc.name, tc.run)
	}
}

type conformance struct {
	open func(testing.TB) broker.Store
}

// t0 is the instant the suite counts from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

var errStop = errors.New("conformance: stop")

func update(tb testing.TB, s broker.Store, fn func(broker.Tx) error) {
	tb.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		tb.Fatalf("update: %v", err)
	}
}

func view(tb testing.TB, s broker.Store, fn func(broker.TxReader) error) {
	tb.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		tb.Fatalf("view: %v", err)
	}
}

var (
	alice = broker.Operator{Issuer: "https://idp.example", Subject: "alice", Email: "alice@example.com", Name: "Alice", AuthTime: t0}
	terms = broker.Terms{
		Scopes:   []string{"repo:read", "repo:write"},
		Details:  []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Locations: []string{"https://git.example"}, Actions: []string{"read"}, Identifier: "repo-1", Intent: "fix the build"}},
		Resource: "https://git.example",
		TTL:      15 * time.Minute,
	}
)

func sampleRequest(id string, state broker.RequestState, created time.Time) *broker.TaskRequest {
	return &broker.TaskRequest{
		ID: id, AgentID: "agent-1", LoginHint: "oncall", Intent: "fix the build\x1b[31m", Terms: terms,
		ParentID: "r0", State: state, CreatedAt: created, Deadline: created.Add(5 * time.Minute),
		Interval: 5 * time.Second, LastPoll: created.Add(time.Second),
		Policy: &broker.PolicyResult{Verdict: "review", Risk: broker.Risk(1), Trace: []string{"rule a: matched"}},
	}
}

func sampleGrant(id, agent string, state broker.GrantState, created time.Time) *broker.Grant {
	return &broker.Grant{
		ID: id, RequestID: "r-" + id, DecisionID: "d-" + id, AgentID: agent, ParentID: "g0",
		Intent: "fix the build", Terms: terms, Approver: alice, State: state,
		CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
		Epoch: 3, AgentEpoch: 2, TokenJTI: "jti-" + id, JKT: "thumb", Uses: 4, LastUse: created.Add(time.Minute),
	}
}

func (c *conformance) notFound(t *testing.T) {
	s := c.open(t)
	gets := map[string]func(broker.TxReader) error{
		"Request":  func(tx broker.TxReader) error { _, err := tx.Request("x"); return err },
		"Decision": func(tx broker.TxReader) error { _, err := tx.Decision("x"); return err },
		"Grant":    func(tx broker.TxReader) error { _, err := tx.Grant("x"); return err },
		"Token":    func(tx broker.TxReader) error { _, err := tx.Token("x"); return err },
		"Record":   func(tx broker.TxReader) error { _, err := tx.Record(broker.RecordSSFStream, "x"); return err },
		"empty id": func(tx broker.TxReader) error { _, err := tx.Grant(""); return err },
	}
	for name, get := range gets {
		t.Run(name, func(t *testing.T) {
			if err := s.View(t.Context(), get); broker.ErrorCode(err) != broker.ENOTFOUND {
				t.Errorf("%s of a missing id: %v, want ENOTFOUND", name, err)
			}
			// The same in a write transaction.
			if err := s.Update(t.Context(), func(tx broker.Tx) error { return get(tx) }); broker.ErrorCode(err) != broker.ENOTFOUND {
				t.Errorf("%s of a missing id in Update: %v, want ENOTFOUND", name, err)
			}
		})
	}
}

func (c *conformance) zeroValues(t *testing.T) {
	s := c.open(t)
	view(t, s, func(tx broker.TxReader) error {
		if st, err := tx.Issuer(); err != nil || !reflect.DeepEqual(st, broker.IssuerState{}) {
			t.Errorf("Issuer on a new store: %+v, %v", st, err)
		}
		if st, err := tx.AgentState("never"); err != nil || !reflect.DeepEqual(st, broker.AgentState{ID: "never"}) {
			t.Errorf("AgentState of an unseen agent: %+v, %v", st, err)
		}
		if n, err := tx.LastSignalSeq(); n != 0 || err != nil {
			t.Errorf("LastSignalSeq of an empty feed = %d, %v", n, err)
		}
		if keys, err := tx.SigningKeys(); len(keys) != 0 || err != nil {
			t.Errorf("SigningKeys of a new store = %+v, %v", keys, err)
		}
		seen := 0
		count := func(any) error { seen++; return nil }
		for name, each := range map[string]func() error{
			"ForEachAgentState":  func() error { return tx.ForEachAgentState(func(s broker.AgentState) error { return count(s) }) },
			"ForEachPending":     func() error { return tx.ForEachPending(func(r *broker.TaskRequest) error { return count(r) }) },
			"ForEachGrant":       func() error { return tx.ForEachGrant(func(g *broker.Grant) error { return count(g) }) },
			"ForEachActiveGrant": func() error { return tx.ForEachActiveGrant(func(g *broker.Grant) error { return count(g) }) },
			"ForEachDue":         func() error { return tx.ForEachDue(at(1e6*time.Hour), func(d broker.Due) error { return count(d) }) },
			"ForEachAudit":       func() error { return tx.ForEachAudit(0, func(e *broker.AuditEntry) error { return count(e) }) },
			"ForEachAuditReverse": func() error {
				return tx.ForEachAuditReverse(0, func(e *broker.AuditEntry) error { return count(e) })
			},
			"ForEachRecord": func() error {
				return tx.ForEachRecord(broker.RecordSSFStream, func(_ string, v []byte) error { return count(v) })
			},
		} {
			if err := each(); err != nil || seen != 0 {
				t.Errorf("%s on a new store: visited %d, %v", name, seen, err)
			}
		}
		return nil
	})
}

func (c *conformance) roundTrip(t *testing.T) {
	s := c.open(t)
	ended := sampleGrant("g2", "agent-1", broker.GrantRevoked, t0)
	ended.EndedAt, ended.EndReason, ended.EndedBy = at(time.Minute), "suspicious", &alice
	cases := []struct {
		name string
		put  func(broker.Tx) error
		get  func(broker.TxReader) (any, error)
		want any
	}{
		{
			name: "issuer",
			put: func(tx broker.Tx) error {
				return tx.PutIssuer(broker.IssuerState{Frozen: true, FrozenAt: t0, FrozenBy: &alice, FrozenWhy: "incident", Epoch: 7, EpochAt: t0})
			},
			get:  func(tx broker.TxReader) (any, error) { return tx.Issuer() },
			want: broker.IssuerState{Frozen: true, FrozenAt: t0, FrozenBy: &alice, FrozenWhy: "incident", Epoch: 7, EpochAt: t0},
		},
		{
			name: "agent state",
			put: func(tx broker.Tx) error {
				return tx.PutAgentState(broker.AgentState{ID: "agent-1", Epoch: 2, EpochAt: t0, Quarantined: true, LastSeen: t0, Throttled: 9})
			},
			get:  func(tx broker.TxReader) (any, error) { return tx.AgentState("agent-1") },
			want: broker.AgentState{ID: "agent-1", Epoch: 2, EpochAt: t0, Quarantined: true, LastSeen: t0, Throttled: 9},
		},
		{
			name: "request",
			put:  func(tx broker.Tx) error { return tx.PutRequest(sampleRequest("r1", broker.RequestPending, t0)) },
			get:  func(tx broker.TxReader) (any, error) { return tx.Request("r1") },
			want: sampleRequest("r1", broker.RequestPending, t0),
		},
		{
			name: "decision",
			put: func(tx broker.Tx) error {
				return tx.PutDecision(&broker.Decision{ID: "d1", RequestID: "r1", Kind: broker.DecisionNarrow, Operator: alice, Reason: "too broad", At: t0, Requested: terms, Granted: &broker.Terms{Scopes: []string{"repo:read"}, Resource: terms.Resource, TTL: time.Minute}})
			},
			get:  func(tx broker.TxReader) (any, error) { return tx.Decision("d1") },
			want: &broker.Decision{ID: "d1", RequestID: "r1", Kind: broker.DecisionNarrow, Operator: alice, Reason: "too broad", At: t0, Requested: terms, Granted: &broker.Terms{Scopes: []string{"repo:read"}, Resource: terms.Resource, TTL: time.Minute}},
		},
		{
			name: "active grant",
			put:  func(tx broker.Tx) error { return tx.PutGrant(sampleGrant("g1", "agent-1", broker.GrantActive, t0)) },
			get:  func(tx broker.TxReader) (any, error) { return tx.Grant("g1") },
			want: sampleGrant("g1", "agent-1", broker.GrantActive, t0),
		},
		{
			name: "ended grant",
			put:  func(tx broker.Tx) error { return tx.PutGrant(ended) },
			get:  func(tx broker.TxReader) (any, error) { return tx.Grant("g2") },
			want: ended,
		},
		{
			name: "token",
			put: func(tx broker.Tx) error {
				return tx.PutToken(&broker.Token{JTI: "j1", GrantID: "g1", AgentID: "agent-1", KeyID: "k1", IssuedAt: t0, ExpiresAt: at(time.Hour), JKT: "thumb"})
			},
			get:  func(tx broker.TxReader) (any, error) { return tx.Token("j1") },
			want: &broker.Token{JTI: "j1", GrantID: "g1", AgentID: "agent-1", KeyID: "k1", IssuedAt: t0, ExpiresAt: at(time.Hour), JKT: "thumb"},
		},
		{
			// A revocation has no getter: it is written for the record.
			name: "revocation",
			put: func(tx broker.Tx) error {
				return tx.PutRevocation(&broker.Revocation{ID: "v1", Scope: broker.RevokeAgent, Target: "agent-1", Operator: alice, At: t0, Epoch: 4, Grants: 2})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			update(t, s, tc.put)
			if tc.get == nil {
				return
			}
			// Read back in the writing transaction's successor and in a view.
			update(t, s, func(tx broker.Tx) error {
				if got, err := tc.get(tx); err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("in Update: got %+v, %v\nwant %+v", got, err, tc.want)
				}
				return nil
			})
			view(t, s, func(tx broker.TxReader) error {
				if got, err := tc.get(tx); err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("in View: got %+v, %v\nwant %+v", got, err, tc.want)
				}
				return nil
			})
		})
	}
}

// copies: what a caller passes in or gets back is its own; changing it
// changes nothing stored.
func (c *conformance) copies(t *testing.T) {
	s := c.open(t)
	g := sampleGrant("g1", "agent-1", broker.GrantActive, t0)
	r := sampleRequest("r1", broker.RequestPending, t0)
	value := []byte("original")
	update(t, s, func(tx broker.Tx) error {
		if err := tx.PutGrant(g); err != nil {
			return err
		}
		if err := tx.PutRequest(r); err != nil {
			return err
		}
		return tx.PutRecord(broker.RecordSSFCursor, "c", value)
	})
	g.Terms.Scopes[0], r.Terms.Details[0].Actions[0], value[0] = "changed", "changed", 'X'
	view(t, s, func(tx broker.TxReader) error {
		got, err := tx.Grant("g1")
		if err != nil {
			return err
		}
		got.Terms.Scopes[0] = "changed-after-get"
		req, err := tx.Request("r1")
		if err != nil {
			return err
		}
		req.Terms.Details[0].Actions[0] = "changed-after-get"
		v, err := tx.Record(broker.RecordSSFCursor, "c")
		if err != nil {
			return err
		}
		v[0] = 'Y'
		return tx.ForEachRecord(broker.RecordSSFCursor, func(_ string, v []byte) error { v[0] = 'Z'; return nil })
	})
	view(t, s, func(tx broker.TxReader) error {
		if got, err := tx.Grant("g1"); err != nil || got.Terms.Scopes[0] != "repo:read" {
			t.Errorf("grant scopes = %v, %v; want the stored repo:read", got, err)
		}
		if got, err := tx.Request("r1"); err != nil || got.Terms.Details[0].Actions[0] != "read" {
			t.Errorf("request detail actions = %v, %v; want the stored read", got, err)
		}
		if v, err := tx.Record(broker.RecordSSFCursor, "c"); err != nil || !bytes.Equal(v, []byte("original")) {
			t.Errorf("record = %q, %v; want original", v, err)
		}
		return nil
	})
}

func (c *conformance) invalidWrites(t *testing.T) {
	s := c.open(t)
	writes := map[string]func(broker.Tx) error{
		"nil request":     func(tx broker.Tx) error { return tx.PutRequest(nil) },
		"nil grant":       func(tx broker.Tx) error { return tx.PutGrant(nil) },
		"nil decision":    func(tx broker.Tx) error { return tx.PutDecision(nil) },
		"nil token":       func(tx broker.Tx) error { return tx.PutToken(nil) },
		"nil revocation":  func(tx broker.Tx) error { return tx.PutRevocation(nil) },
		"nil audit":       func(tx broker.Tx) error { return tx.AppendAudit(nil) },
		"nil signal":      func(tx broker.Tx) error { return tx.AppendSignal(nil) },
		"no id":           func(tx broker.Tx) error { return tx.PutGrant(&broker.Grant{}) },
		"no request id":   func(tx broker.Tx) error { return tx.PutRequest(&broker.TaskRequest{State: broker.RequestPending}) },
		"huge id":         func(tx broker.Tx) error { return tx.PutToken(&broker.Token{JTI: string(make([]byte, 4096))}) },
		"NUL in agent":    func(tx broker.Tx) error { return tx.PutGrant(&broker.Grant{ID: "g", AgentID: "a\x00b"}) },
		"no agent id":     func(tx broker.Tx) error { return tx.PutAgentState(broker.AgentState{}) },
		"no kid":          func(tx broker.Tx) error { return tx.PutSigningKey(broker.SigningKey{}) },
		"unknown ns":      func(tx broker.Tx) error { return tx.PutRecord("nope", "id", nil) },
		"record no id":    func(tx broker.Tx) error { return tx.PutRecord(broker.RecordSSFCursor, "", nil) },
		"unknown ns read": func(tx broker.Tx) error { _, err := tx.Record("nope", "id"); return err },
		"unknown ns scan": func(tx broker.Tx) error {
			return tx.ForEachRecord("nope", func(string, []byte) error { return nil })
		},
		"unknown ns delete": func(tx broker.Tx) error { return tx.DeleteRecord("nope", "id") },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			if err := s.Update(t.Context(), write); broker.ErrorCode(err) != broker.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		})
	}
	view(t, s, func(tx broker.TxReader) error {
		n := 0
		err := tx.ForEachGrant(func(*broker.Grant) error { n++; return nil })
		if err != nil || n != 0 {
			t.Errorf("grants after refused writes: %d, %v", n, err)
		}
		return nil
	})
}

func (c *conformance) signingKeys(t *testing.T) {
	s := c.open(t)
	newer := broker.SigningKey{ID: "a-newer", Alg: "EdDSA", Private: []byte(`{"kty":"OKP"}`), CreatedAt: at(time.Hour)}
	older := broker.SigningKey{ID: "z-older", Alg: "ES256", Private: []byte(`{"kty":"EC"}`), CreatedAt: t0, RetiredAt: at(time.Hour), RemoveAt: at(2 * time.Hour)}
	update(t, s, func(tx broker.Tx) error {
		if err := tx.PutSigningKey(newer); err != nil {
			return err
		}
		return tx.PutSigningKey(older)
	})
	view(t, s, func(tx broker.TxReader) error {
		keys, err := tx.SigningKeys()
		if want := []broker.SigningKey{older, newer}; err != nil || !reflect.DeepEqual(keys, want) {
			t.Errorf("SigningKeys = %+v, %v; want oldest first %+v", keys, err, want)
		}
		return nil
	})
	update(t, s, func(tx broker.Tx) error {
		if err := tx.DeleteSigningKey(older.ID); err != nil {
			return err
		}
		if err := tx.DeleteSigningKey(""); err != nil {
			return err
		}
		return tx.DeleteSigningKey("never-existed")
	})
	view(t, s, func(tx broker.TxReader) error {
		keys, err := tx.SigningKeys()
		if err != nil || len(keys) != 1 || keys[0].ID != newer.ID {
			t.Errorf("after delete: %+v, %v", keys, err)
		}
		return nil
	})
}

func (c *conformance) records(t *testing.T) {
	s := c.open(t)
	update(t, s, func(tx broker.Tx) error {
		for _, r := range []struct{ ns, id, v string }{
			{broker.RecordSSFStream, "s2", `{"aud":"b"}`},
			{broker.RecordSSFStream, "s1", `{"aud":"a"}`},
			{broker.RecordSSFStream, "s3", ``},
			{broker.RecordSSFCursor, "s1", `17`},
		} {
			if err := tx.PutRecord(r.ns, r.id, []byte(r.v)); err != nil {
				return err
			}
		}
		return tx.PutRecord(broker.RecordStanding, "nil", nil)
	})
	var got []string
	view(t, s, func(tx broker.TxReader) error {
		if v, err := tx.Record(broker.RecordSSFCursor, "s1"); err != nil || string(v) != "17" {
			t.Errorf("cursor s1 = %q, %v", v, err)
		}
		for _, id := range []string{"s3"} {
			if v, err := tx.Record(broker.RecordSSFStream, id); err != nil || v == nil || len(v) != 0 {
				t.Errorf("empty record = %#v, %v; want a non-nil empty value", v, err)
			}
		}
		if v, err := tx.Record(broker.RecordStanding, "nil"); err != nil || v == nil || len(v) != 0 {
			t.Errorf("record written as nil = %#v, %v; want a non-nil empty value", v, err)
		}
		return tx.ForEachRecord(broker.RecordSSFStream, func(id string, v []byte) error {
			got = append(got, id+"="+string(v))
			return nil
		})
	})
	if want := []string{`s1={"aud":"a"}`, `s2={"aud":"b"}`, `s3=`}; !reflect.DeepEqual(got, want) {
		t.Errorf("ForEachRecord = %q, want %q", got, want)
	}
	// Deleting inside ForEachRecord visits every record exactly once;
	// one written after the current id is visited too.
	var visited []string
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachRecord(broker.RecordSSFStream, func(id string, _ []byte) error {
			visited = append(visited, id)
			if id == "s1" {
				if err := tx.PutRecord(broker.RecordSSFStream, "s4", []byte("later")); err != nil {
					return err
				}
			}
			return tx.DeleteRecord(broker.RecordSSFStream, id)
		})
	})
	if want := []string{"s1", "s2", "s3", "s4"}; !reflect.DeepEqual(visited, want) {
		t.Errorf("visited while deleting %q, want %q", visited, want)
	}
	update(t, s, func(tx broker.Tx) error {
		if err := tx.DeleteRecord(broker.RecordSSFStream, "never-existed"); err != nil {
			t.Errorf("deleting a missing record: %v", err)
		}
		return tx.DeleteRecord(broker.RecordSSFStream, "")
	})
	view(t, s, func(tx broker.TxReader) error {
		if _, err := tx.Record(broker.RecordSSFStream, "s1"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("deleted record: %v, want ENOTFOUND", err)
		}
		if _, err := tx.Record(broker.RecordSSFCursor, "s1"); err != nil {
			t.Errorf("record of the other namespace: %v", err)
		}
		return nil
	})
}
