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

func sampleGrant(id, agent string, state broker.GrantState, created time.Time) *broker.Grant {
	return &broker.Grant{
		ID: id, RequestID: "r-" + id, DecisionID: "d-" + id, AgentID: agent, ParentID: "g0",
		Intent: "fix the build", Terms: terms, Approver: alice, State: state,
		CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
		Epoch: 3, AgentEpoch: 2, TokenJTI: "jti-" + id, JKT: "thumb", Uses: 4, LastUse: created.Add(time.Minute),
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
