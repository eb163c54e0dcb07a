package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// TestAuditStoredInVersion2 checks the layout of an appended entry: the
// links, then the entry's bytes exactly as hashed.
func TestAuditStoredInVersion2(t *testing.T) {
	s := MustOpen(t)
	var e broker.AuditEntry
	update(t, s, func(tx broker.Tx) error {
		if err := tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditFrozen, Actor: "system"}); err != nil {
			return err
		}
		e = broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued, Actor: "agent:a", Message: "issued"}
		return tx.AppendAudit(&e)
	})
	raw := rawValue(t, s, bucketAudit, string(seqKey(2)))
	if !bytes.HasPrefix(raw, []byte{storedMarker, auditV2, auditTag}) {
		t.Fatalf("entry stored as % x…, want a version-2 header", raw[:min(len(raw), 8)])
	}
	prev, hash, body, reason := auditLinks(raw)
	if reason != "" || prev != e.Prev || hash != e.Hash || !bytes.Equal(body, e.Body) || body[0] != '{' {
		t.Errorf("links %q %q body %s (%s); want %q %q %s", prev, hash, body, reason, e.Prev, e.Hash, e.Body)
	}
}

// TestAuditUnreadableEntries: an entry of an unknown version, with broken
// links or of another kind is a broken chain at its seq, for the walks
// and for the next append, which must not chain after what it cannot read.
func TestAuditUnreadableEntries(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
		want  string
	}{
		{"future version", []byte{storedMarker, 9, auditTag, 0, 0, '{', '}'}, "format version 9, which this writ does not know"},
		{"broken prev link", []byte{storedMarker, auditV2, auditTag, 0x7f, 'a'}, "broken previous-hash link"},
		{"broken hash", []byte{storedMarker, auditV2, auditTag, 0, 0x05, 'a'}, "broken hash"},
		{"another kind", encodeGrant(fixtureGrant()), "holds a stored grant instead of an entry"},
		{"no tag", []byte{storedMarker, auditV2}, "holds nothing instead of an entry"},
		{"body not JSON", append(encodeAudit("", "h", nil), "nope"...), "is not a valid entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustOpen(t)
			appendAudit(t, s, 2)
			err := s.db.Update(func(btx *bolt.Tx) error { return btx.Bucket(bucketAudit).Put(seqKey(2), tt.value) })
			if err != nil {
				t.Fatal(err)
			}
			walks := map[string]func(tx broker.TxReader) error{
				"forward": func(tx broker.TxReader) error {
					return tx.ForEachAudit(0, func(*broker.AuditEntry) error { return nil })
				},
				"reverse": func(tx broker.TxReader) error {
					return tx.ForEachAuditReverse(0, func(*broker.AuditEntry) error { return nil })
				},
			}
			for name, walk := range walks {
				err := s.View(t.Context(), walk)
				ce, ok := errors.AsType[*broker.ChainError](err)
				if !ok || ce.Seq != 2 || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s walk: %v; want a ChainError at 2 saying %q", name, err, tt.want)
				}
			}
			err = s.Update(t.Context(), func(tx broker.Tx) error {
				return tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditFrozen, Actor: "system"})
			})
			// Only the links are read to append: a version-2 entry whose
			// links read chains on (its body is the verifier's to judge).
			if tt.name == "body not JSON" {
				if err != nil {
					t.Errorf("append after an entry with readable links: %v", err)
				}
				return
			}
			if ce, ok := errors.AsType[*broker.ChainError](err); !ok || ce.Seq != 2 {
				t.Errorf("append after an unreadable entry: %v; want a ChainError at 2", err)
			}
		})
	}
}
