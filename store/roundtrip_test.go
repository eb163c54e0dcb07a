package store

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

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

func TestRoundTrip(t *testing.T) {
	s := MustOpen(t)
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			update(t, s, tc.put)
			view(t, s, func(tx broker.TxReader) error {
				got, err := tc.get(tx)
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
				return nil
			})
		})
	}
}

func TestRevocationIsWritten(t *testing.T) {
	s := MustOpen(t)
	update(t, s, func(tx broker.Tx) error {
		return tx.PutRevocation(&broker.Revocation{ID: "v1", Scope: broker.RevokeAgent, Target: "agent-1", Operator: alice, At: t0, Epoch: 4, Grants: 2})
	})
	if keys := bucketKeys(t, s, bucketRevocations); !reflect.DeepEqual(keys, []string{"v1"}) {
		t.Errorf("revocations: %q", keys)
	}
}

func TestZeroValues(t *testing.T) {
	s := MustOpen(t)
	view(t, s, func(tx broker.TxReader) error {
		if st, err := tx.Issuer(); err != nil || !reflect.DeepEqual(st, broker.IssuerState{}) {
			t.Errorf("Issuer on a new store: %+v, %v", st, err)
		}
		if st, err := tx.AgentState("never"); err != nil || !reflect.DeepEqual(st, broker.AgentState{ID: "never"}) {
			t.Errorf("AgentState of an unseen agent: %+v, %v", st, err)
		}
		return nil
	})
}

func TestNotFound(t *testing.T) {
	s := MustOpen(t)
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
			err := s.View(t.Context(), get)
			if broker.ErrorCode(err) != broker.ENOTFOUND {
				t.Errorf("%s of a missing id: %v, want ENOTFOUND", name, err)
			}
		})
	}
}

func TestInvalidWrites(t *testing.T) {
	s := MustOpen(t)
	writes := map[string]func(broker.Tx) error{
		"nil request":     func(tx broker.Tx) error { return tx.PutRequest(nil) },
		"nil grant":       func(tx broker.Tx) error { return tx.PutGrant(nil) },
		"nil decision":    func(tx broker.Tx) error { return tx.PutDecision(nil) },
		"nil token":       func(tx broker.Tx) error { return tx.PutToken(nil) },
		"nil revocation":  func(tx broker.Tx) error { return tx.PutRevocation(nil) },
		"nil audit":       func(tx broker.Tx) error { return tx.AppendAudit(nil) },
		"nil signal":      func(tx broker.Tx) error { return tx.AppendSignal(nil) },
		"no id":           func(tx broker.Tx) error { return tx.PutGrant(&broker.Grant{}) },
		"huge id":         func(tx broker.Tx) error { return tx.PutToken(&broker.Token{JTI: string(make([]byte, 4096))}) },
		"NUL in agent":    func(tx broker.Tx) error { return tx.PutGrant(&broker.Grant{ID: "g", AgentID: "a\x00b"}) },
		"no agent id":     func(tx broker.Tx) error { return tx.PutAgentState(broker.AgentState{}) },
		"no kid":          func(tx broker.Tx) error { return tx.PutSigningKey(broker.SigningKey{}) },
		"unknown ns":      func(tx broker.Tx) error { return tx.PutRecord("nope", "id", nil) },
		"record no id":    func(tx broker.Tx) error { return tx.PutRecord(broker.RecordSSFCursor, "", nil) },
		"unknown ns read": func(tx broker.Tx) error { _, err := tx.Record("nope", "id"); return err },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			if err := s.Update(t.Context(), write); broker.ErrorCode(err) != broker.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		})
	}
}

func TestSigningKeys(t *testing.T) {
	s := MustOpen(t)
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
		if err != nil {
			t.Fatal(err)
		}
		if want := []broker.SigningKey{older, newer}; !reflect.DeepEqual(keys, want) {
			t.Errorf("SigningKeys = %+v, want oldest first %+v", keys, want)
		}
		return nil
	})
	update(t, s, func(tx broker.Tx) error {
		if err := tx.DeleteSigningKey(older.ID); err != nil {
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

func TestRecords(t *testing.T) {
	s := MustOpen(t)
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
		return nil
	})
	var got []string
	view(t, s, func(tx broker.TxReader) error {
		v, err := tx.Record(broker.RecordSSFCursor, "s1")
		if err != nil || string(v) != "17" {
			t.Errorf("cursor s1 = %q, %v", v, err)
		}
		if v, err := tx.Record(broker.RecordSSFStream, "s3"); err != nil || v == nil || len(v) != 0 {
			t.Errorf("empty record = %#v, %v; want a non-nil empty value", v, err)
		}
		return tx.ForEachRecord(broker.RecordSSFStream, func(id string, v []byte) error {
			got = append(got, id+"="+string(v))
			return nil
		})
	})
	if want := []string{`s1={"aud":"a"}`, `s2={"aud":"b"}`, `s3=`}; !reflect.DeepEqual(got, want) {
		t.Errorf("ForEachRecord = %q, want %q", got, want)
	}
	// Deleting inside ForEachRecord visits every record exactly once.
	var visited []string
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachRecord(broker.RecordSSFStream, func(id string, _ []byte) error {
			visited = append(visited, id)
			return tx.DeleteRecord(broker.RecordSSFStream, id)
		})
	})
	if want := []string{"s1", "s2", "s3"}; !reflect.DeepEqual(visited, want) {
		t.Errorf("visited while deleting %q, want %q", visited, want)
	}
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

func TestRecordValueIsACopy(t *testing.T) {
	s := MustOpen(t)
	value := []byte("original")
	update(t, s, func(tx broker.Tx) error { return tx.PutRecord(broker.RecordSSFCursor, "c", value) })
	value[0] = 'X' // the caller reusing its buffer must not change the store
	var got []byte
	view(t, s, func(tx broker.TxReader) error {
		var err error
		got, err = tx.Record(broker.RecordSSFCursor, "c")
		return err
	})
	// Writing after the transaction ended must not fault or change the store.
	got[0] = 'Y'
	view(t, s, func(tx broker.TxReader) error {
		v, err := tx.Record(broker.RecordSSFCursor, "c")
		if err != nil || !bytes.Equal(v, []byte("original")) {
			t.Errorf("record = %q, %v; want original", v, err)
		}
		return nil
	})
}
