package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// Version-0 values exactly as main's writ wrote the fixtures of
// stored_fixture_test.go: the JSON of the broker structs, durations as Go
// duration strings. Fixed bytes, so a change to broker's JSON cannot move
// them.
const (
	v0Request    = `{"id":"r1","agent_id":"agent-1","login_hint":"oncall@example.com","intent":"fix the build → ship it","terms":{"scopes":["repo:read","repo:write"],"authorization_details":[{"type":"https://writ.dev/agent-task","locations":["https://git.example/a"],"actions":["repo:read","repo:write"],"datatypes":["code"],"identifier":"repo-1","privileges":["push"],"intent":"fix the build"}],"resource":"https://git.example","ttl":"1h30m"},"parent_id":"r0","state":"pending","created_at":"2026-03-01T12:00:00.123456789Z","deadline":"2026-03-01T12:05:00.123456789Z","closed_at":"2026-03-01T12:01:00.123456789Z","decision_id":"d1","grant_id":"g1","last_poll":"2026-03-01T12:00:10.123456789Z","policy":{"verdict":"review","risk":"high","trace":["rule a → label high"],"rule":"a","reason":"writes","auto_approve":true,"require_approvals":2,"max_ttl":"30m"},"approvals":[{"operator":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"at":"2026-03-01T12:02:00.123456789Z","kind":"narrow","terms":{"scopes":["repo:read"],"resource":"https://git.example","ttl":"15m"},"reason":"read only"}],"interval":"5s"}`
	v0Decision   = `{"id":"d1","request_id":"r1","kind":"narrow","operator":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"reason":"read only","at":"2026-03-01T12:03:00.123456789Z","requested":{"scopes":["repo:read","repo:write"],"authorization_details":[{"type":"https://writ.dev/agent-task","locations":["https://git.example/a"],"actions":["repo:read","repo:write"],"datatypes":["code"],"identifier":"repo-1","privileges":["push"],"intent":"fix the build"}],"resource":"https://git.example","ttl":"1h30m"},"granted":{"scopes":["repo:read"],"resource":"https://git.example","ttl":"15m"}}`
	v0Grant      = `{"id":"g1","request_id":"r1","decision_id":"d1","agent_id":"agent-1","parent_id":"g0","children":["g2","g3"],"intent":"fix the build","terms":{"scopes":["repo:read"],"resource":"https://git.example","ttl":"15m"},"approver":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"state":"active","created_at":"2026-03-01T12:00:00.123456789Z","expires_at":"2026-03-01T12:15:00.123456789Z","ended_at":"2026-03-01T12:20:00.123456789Z","end_reason":"done","ended_by":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"end_kind":"revoked","end_parent":"g0","epoch":3,"agent_epoch":2,"token_jti":"jti-1","jkt":"thumb","uses":4,"last_use":"2026-03-01T12:01:00.123456789Z","refused_after_end":5,"accepted_after_end":6}`
	v0Token      = `{"jti":"jti-1","grant_id":"g1","agent_id":"agent-1","kid":"kid-1","iat":"2026-03-01T12:00:00.123456789Z","exp":"2026-03-01T12:15:00.123456789Z","jkt":"thumb"}`
	v0Revocation = `{"id":"v1","scope":"agent","target":"agent-1","operator":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"reason":"leak","at":"2026-03-01T13:00:00.123456789Z","epoch":8,"freeze":true,"grants":2}`
	v0Issuer     = `{"frozen":true,"frozen_at":"2026-03-01T12:00:00.123456789Z","frozen_by":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"frozen_why":"incident","epoch":7,"epoch_at":"2026-03-01T10:00:00.123456789Z","epochs":[{"epoch":7,"at":"2026-03-01T10:00:00.123456789Z","by":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"reason":"rotate"}]}`
	v0Agent      = `{"id":"agent-1","epoch":7,"epoch_at":"2026-03-01T10:00:00.123456789Z","epochs":[{"epoch":7,"at":"2026-03-01T10:00:00.123456789Z","by":{"iss":"https://idp.example","sub":"bob","email":"bob@example.com","email_verified":true,"name":"Bob","auth_time":"2026-03-01T11:00:00.123456789Z","dev":true},"reason":"rotate"}],"quarantined":true,"last_seen":"2026-03-01T12:00:00.123456789Z","throttled":9}`
	v0SigningKey = `{"kid":"kid-1","alg":"ES256","private":"eyJrdHkiOiJFQyJ9","created_at":"2026-03-01T12:00:00.123456789Z","retired_at":"2026-03-01T13:00:00.123456789Z","remove_at":"2026-03-01T14:00:00.123456789Z"}`
	v0Signal     = `{"seq":1,"kind":"session-revoked","at":"2026-03-01T12:00:00.123456789Z","grant_id":"g1","jti":"jti-1","agent_id":"agent-1","all":true,"epoch":8,"aud":"https://git.example","initiating_entity":"admin","reason":"leak","claims":{"n":2,"scope":"repo:read"}}`
	v0Cursor     = `17`

	// v0RequestNanos is a request as writ wrote it before durations were
	// strings: TTL, interval and max_ttl in nanoseconds, omitted fields
	// absent.
	v0RequestNanos = `{"id":"r2","agent_id":"agent-1","login_hint":"","intent":"read","terms":{"scopes":["repo:read"],"resource":"https://git.example","ttl":900000000000},"state":"approved","created_at":"2026-03-01T12:00:00.123456789Z","deadline":"2026-03-01T12:05:00.123456789Z","interval":5000000000,"policy":{"verdict":"auto-approve","risk":"low","max_ttl":1800000000000}}`
)

func fixtureRequestNanos() *broker.TaskRequest {
	return &broker.TaskRequest{ID: "r2", AgentID: "agent-1", Intent: "read",
		Terms: broker.Terms{Scopes: []string{"repo:read"}, Resource: "https://git.example", TTL: 15 * time.Minute},
		State: broker.RequestApproved, CreatedAt: fx0, Deadline: fx0.Add(5 * time.Minute), Interval: 5 * time.Second,
		Policy: &broker.PolicyResult{Verdict: "auto-approve", Risk: broker.RiskLow, MaxTTL: 30 * time.Minute}}
}

// writeMainStore makes, with bbolt alone, the store main's writ left after
// writing the fixtures: its buckets, schema 1, version-0 values and the
// index keys that go with them.
func writeMainStore(tb testing.TB, path string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	put := func(btx *bolt.Tx, bucket string, key []byte, value string) {
		b, err := btx.CreateBucketIfNotExists([]byte(bucket))
		if err == nil {
			err = b.Put(key, []byte(value))
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for _, name := range []string{"meta", "issuer", "agents", "requests", "requests_pending", "decisions", "grants",
			"grants_by_created", "grants_active", "due", "tokens", "revocations", "audit", "signals", "signing_keys", "records"} {
			if _, err := btx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		for _, ns := range []string{"ssf.stream", "ssf.cursor", "standing.approval"} {
			if _, err := btx.Bucket([]byte("records")).CreateBucket([]byte(ns)); err != nil {
				return err
			}
		}
		put(btx, "meta", []byte("magic"), "writ")
		put(btx, "meta", []byte("schema"), "\x00\x00\x00\x01")
		put(btx, "issuer", []byte("state"), v0Issuer)
		put(btx, "agents", []byte("agent-1"), v0Agent)
		put(btx, "requests", []byte("r1"), v0Request)
		put(btx, "requests", []byte("r2"), v0RequestNanos)
		put(btx, "requests_pending", timeIDKey(fx0, "r1"), "")
		put(btx, "due", dueKey(fx0.Add(5*time.Minute), dueKindRequest, "r1"), "")
		put(btx, "decisions", []byte("d1"), v0Decision)
		put(btx, "grants", []byte("g1"), v0Grant)
		put(btx, "grants_by_created", timeIDKey(fx0, "g1"), "")
		put(btx, "grants_active", timeIDKey(fx0, "g1"), "")
		put(btx, "due", dueKey(fx0.Add(15*time.Minute), dueKindGrant, "g1"), "")
		put(btx, "tokens", []byte("jti-1"), v0Token)
		put(btx, "revocations", []byte("v1"), v0Revocation)
		put(btx, "signing_keys", []byte("kid-1"), v0SigningKey)
		put(btx, "signals", seqKey(1), v0Signal)
		return btx.Bucket([]byte("records")).Bucket([]byte("ssf.cursor")).Put([]byte("s1"), []byte(v0Cursor))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// mainStoreView is what a reader sees of the store writeMainStore makes.
type mainStoreView struct {
	Request, RequestNanos *broker.TaskRequest
	Pending               []*broker.TaskRequest
	Decision              *broker.Decision
	Grant                 *broker.Grant
	Active                []*broker.Grant
	Token                 *broker.Token
	Issuer                broker.IssuerState
	Agent                 broker.AgentState
	Agents                []broker.AgentState
	Keys                  []broker.SigningKey
	Signals               []broker.Signal
	Cursor                []byte
}

func readMainStore(tx broker.TxReader) (v mainStoreView, err error) {
	errs := []error{}
	try := func(e error) { errs = append(errs, e) }
	v.Request, err = tx.Request("r1")
	try(err)
	v.RequestNanos, err = tx.Request("r2")
	try(err)
	try(tx.ForEachPending(func(r *broker.TaskRequest) error { v.Pending = append(v.Pending, r); return nil }))
	v.Decision, err = tx.Decision("d1")
	try(err)
	v.Grant, err = tx.Grant("g1")
	try(err)
	try(tx.ForEachActiveGrant(func(g *broker.Grant) error { v.Active = append(v.Active, g); return nil }))
	v.Token, err = tx.Token("jti-1")
	try(err)
	v.Issuer, err = tx.Issuer()
	try(err)
	v.Agent, err = tx.AgentState("agent-1")
	try(err)
	try(tx.ForEachAgentState(func(s broker.AgentState) error { v.Agents = append(v.Agents, s); return nil }))
	v.Keys, err = tx.SigningKeys()
	try(err)
	v.Signals, err = tx.Signals(0, 10)
	try(err)
	v.Cursor, err = tx.Record(broker.RecordSSFCursor, "s1")
	try(err)
	return v, errors.Join(errs...)
}

// TestStoreWrittenByMainReads opens a store as main's writ left it, with
// records in version 0, and reads every kind back as it was written,
// read-only and read-write; then rewrites records over their version-0
// values and checks the indexes follow.
func TestStoreWrittenByMainReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	writeMainStore(t, path)
	want := mainStoreView{
		Request: fixtureRequest(), RequestNanos: fixtureRequestNanos(),
		Pending:  []*broker.TaskRequest{fixtureRequest()},
		Decision: fixtureDecision(),
		Grant:    fixtureGrant(), Active: []*broker.Grant{fixtureGrant()},
		Token:  fixtureToken(),
		Issuer: fixtureIssuer(),
		Agent:  fixtureAgent(), Agents: []broker.AgentState{fixtureAgent()},
		Keys:    []broker.SigningKey{fixtureSigningKey()},
		Signals: []broker.Signal{*fixtureSignal()},
		Cursor:  []byte(v0Cursor),
	}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		var got mainStoreView
		err := s.View(t.Context(), func(tx broker.TxReader) (err error) {
			got, err = readMainStore(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		diffFields(t, "read back", got, want)
	}
	t.Run("read-only", func(t *testing.T) {
		s, err := OpenReadOnly(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
	})
	if got := schemaOf(t, path); got != 1 {
		t.Errorf("opening read-only changed the schema to %d", got)
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Run("read-write", func(t *testing.T) { check(t, s) })
	// Records written from now on are unreadable by a writ of schema 1, so
	// the store says it is newer, and such a writ refuses it plainly.
	if got := rawValue(t, s, bucketMeta, string(keySchema)); !bytes.Equal(got, schemaValue(schemaVersion)) {
		t.Errorf("schema after opening for writing: %x, want %d", got, schemaVersion)
	}

	// Writing over version-0 values: the old value is read to move the
	// index keys, and the new one is stored in the current version.
	update(t, s, func(tx broker.Tx) error {
		r := fixtureRequest()
		r.State = broker.RequestApproved
		if err := tx.PutRequest(r); err != nil {
			return err
		}
		g := fixtureGrant()
		g.State = broker.GrantRevoked
		return tx.PutGrant(g)
	})
	for bucket, wantKeys := range map[string][]string{"requests_pending": nil, "grants_active": nil, "due": nil} {
		if keys := bucketKeys(t, s, []byte(bucket)); len(keys) != len(wantKeys) {
			t.Errorf("%s after rewriting: %q, want none", bucket, keys)
		}
	}
	view(t, s, func(tx broker.TxReader) error {
		g, err := tx.Grant("g1")
		if err != nil {
			return err
		}
		if g.State != broker.GrantRevoked || !reflect.DeepEqual(g.Terms, fxGranted) {
			t.Errorf("rewritten grant %+v", g)
		}
		return nil
	})
	raw := rawValue(t, s, bucketGrants, "g1")
	if len(raw) == 0 || raw[0] != storedMarker {
		t.Errorf("rewritten grant is stored as %q, not in the current version", raw)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

// diffFields reports each field of struct got that differs from want's,
// as JSON so pointers show what they point to.
func diffFields(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !reflect.DeepEqual(gf, wf) {
			gj, _ := json.Marshal(gf)
			wj, _ := json.Marshal(wf)
			tb.Errorf("%s: %s differs\n got %s\nwant %s", what, g.Type().Field(i).Name, gj, wj)
		}
	}
}

// schemaOf reads the schema a closed store is marked with.
func schemaOf(tb testing.TB, path string) uint32 {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var v []byte
	_ = db.View(func(btx *bolt.Tx) error { v = bytes.Clone(btx.Bucket(bucketMeta).Get(keySchema)); return nil })
	if len(v) != 4 {
		tb.Fatalf("schema %x", v)
	}
	return binary.BigEndian.Uint32(v)
}

// rawValue returns a copy of the stored bytes of key id in bucket name.
func rawValue(tb testing.TB, s *Store, name []byte, id string) []byte {
	tb.Helper()
	var v []byte
	err := s.db.View(func(btx *bolt.Tx) error {
		v = append([]byte(nil), btx.Bucket(name).Get([]byte(id))...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
