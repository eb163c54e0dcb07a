package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// sampleRequest is a typical pending request as the agent API stores it:
// terms with one detail, a policy evaluation with its trace.
func sampleRequest(id string, created time.Time) *broker.TaskRequest {
	return &broker.TaskRequest{
		ID: id, AgentID: "agent-7", LoginHint: "oncall@example.com",
		Intent:    "fix the failing build on main and push the patch",
		Terms:     terms,
		State:     broker.RequestPending,
		CreatedAt: created, Deadline: created.Add(5 * time.Minute),
		Interval: 5 * time.Second, LastPoll: created.Add(10 * time.Second),
		Policy: &broker.PolicyResult{
			Verdict: "review", Risk: broker.RiskMedium, Rule: "repo-writes",
			Trace: []string{"rule repo-writes → label medium", "rule night → no match"},
		},
	}
}

// BenchmarkStoredMainJSON measures what main's writ did per record: the
// JSON of the domain struct (putJSON, getJSON).
func BenchmarkStoredMainJSON(b *testing.B) {
	g := sampleGrant("g0123456789abcdef", "agent-7", broker.GrantActive, t0)
	r := sampleRequest("r0123456789abcdef", t0)
	for _, c := range []struct {
		name string
		v    any
		new  func() any
	}{
		{"grant", g, func() any { return new(broker.Grant) }},
		{"request", r, func() any { return new(broker.TaskRequest) }},
	} {
		data, err := json.Marshal(c.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := json.Unmarshal(data, c.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStored measures the stored types: encode and decode in the
// current version, and decode of main's version-0 JSON (a store written by
// an older writ).
func BenchmarkStored(b *testing.B) {
	g := sampleGrant("g0123456789abcdef", "agent-7", broker.GrantActive, t0)
	r := sampleRequest("r0123456789abcdef", t0)
	gv0, err := json.Marshal(g)
	if err != nil {
		b.Fatal(err)
	}
	rv0, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	gv1, rv1 := encodeGrant(g), encodeRequest(r)
	b.Logf("grant: %d bytes stored, %d as main's JSON; request: %d bytes stored, %d as main's JSON", len(gv1), len(gv0), len(rv1), len(rv0))
	cases := []struct {
		name string
		run  func() error
	}{
		{"encode/grant", func() error { encodeGrant(g); return nil }},
		{"decode/grant", func() error { _, err := decodeGrant(g.ID, gv1); return err }},
		{"decode-v0/grant", func() error { _, err := decodeGrant(g.ID, gv0); return err }},
		{"encode/request", func() error { encodeRequest(r); return nil }},
		{"decode/request", func() error { _, err := decodeRequest(r.ID, rv1); return err }},
		{"decode-v0/request", func() error { _, err := decodeRequest(r.ID, rv0); return err }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoredAudit measures an audit entry's envelope: main wrote
// version 1 (JSON) and read every entry whole, the newest one on every
// append too; version 2 is binary and an append reads only the links.
func BenchmarkStoredAudit(b *testing.B) {
	e := &broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued, Actor: "agent:agent-7", AgentID: "agent-7",
		RequestID: "r0123456789abcdef", GrantID: "g0123456789abcdef", JTI: "jti-0123456789abcdef",
		Message: "token issued for fix the build", Data: json.RawMessage(`{"scopes":["repo:read"],"ttl":"15m"}`), Seq: 12345}
	if err := e.Seal("5f2c0a9d7e8b1c3f5f2c0a9d7e8b1c3f5f2c0a9d7e8b1c3f5f2c0a9d7e8b1c3f"); err != nil {
		b.Fatal(err)
	}
	v1, err := json.Marshal(storedAudit{V: auditV1, Prev: e.Prev, Hash: e.Hash, Entry: e.Body})
	if err != nil {
		b.Fatal(err)
	}
	v2 := encodeAudit(e.Prev, e.Hash, e.Body)
	key := seqKey(e.Seq)
	b.Logf("entry: %d bytes in version 2, %d in version 1", len(v2), len(v1))
	cases := []struct {
		name string
		run  func() error
	}{
		{"encode-v1-main", func() error {
			_, err := json.Marshal(storedAudit{V: auditV1, Prev: e.Prev, Hash: e.Hash, Entry: e.Body})
			return err
		}},
		{"encode", func() error { encodeAudit(e.Prev, e.Hash, e.Body); return nil }},
		{"decode-v1-main", func() error { _, err := decodeAudit(key, v1); return err }},
		{"decode", func() error { _, err := decodeAudit(key, v2); return err }},
		{"links", func() error {
			if _, _, _, reason := auditLinks(v2); reason != "" {
				return errors.New(reason)
			}
			return nil
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
