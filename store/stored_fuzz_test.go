package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/writhq/writ/broker"
)

// FuzzDecodeStored decodes arbitrary bytes as each kind of stored record
// and as a namespace record: no panic, an error or a value, and a value
// read is written back the same way every time (encode ∘ decode is stable
// after one round).
func FuzzDecodeStored(f *testing.F) {
	for i, k := range storedKinds {
		for _, v := range []any{filled(k), k.zero()} {
			data, err := k.encode(v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(byte(i), data)
			f.Add(byte(i), data[:len(data)/2])
		}
		if v0, err := json.Marshal(filled(k)); err == nil {
			f.Add(byte(i), v0)
		}
	}
	for _, v0 := range []string{v0Request, v0RequestNanos, v0Decision, v0Grant, v0Token, v0Revocation, v0Issuer, v0Agent, v0SigningKey, v0Signal} {
		for i := range storedKinds {
			f.Add(byte(i), []byte(v0))
		}
	}
	f.Add(byte(len(storedKinds)), encodeRecord([]byte(`{"n":1}`)))
	f.Add(byte(len(storedKinds)), []byte{storedMarker, 2, 'x'})

	sealed := &broker.AuditEntry{Seq: 1, At: t0, Kind: broker.AuditTokenIssued, Actor: "agent:a", Data: json.RawMessage(`{"n":1}`)}
	if err := sealed.Seal(""); err != nil {
		f.Fatal(err)
	}
	f.Add(byte(len(storedKinds)+1), encodeAudit(sealed.Prev, sealed.Hash, sealed.Body))
	f.Add(byte(len(storedKinds)+1), []byte(`{"v":1,"prev":"","hash":"h","entry":{"seq":1}}`))

	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		if int(which) > len(storedKinds) {
			e, err := decodeAudit(seqKey(1), data)
			if err != nil {
				if _, ok := errors.AsType[*broker.ChainError](err); !ok {
					t.Fatalf("an unreadable entry is %T %v, not a broken chain", err, err)
				}
				return
			}
			again, err := decodeAudit(seqKey(1), encodeAudit(e.Prev, e.Hash, e.Body))
			if len(e.Body) > 0 && (err != nil || again.Hash != e.Hash || again.Prev != e.Prev || !bytes.Equal(again.Body, e.Body)) {
				t.Fatalf("entry %+v reads back as %+v, %v", e, again, err)
			}
			return
		}
		if int(which) == len(storedKinds) {
			v, err := decodeRecord("ns", "id", data)
			if err != nil {
				return
			}
			again, err := decodeRecord("ns", "id", encodeRecord(v))
			if err != nil || !bytes.Equal(again, v) {
				t.Fatalf("record %q reads back as %q, %v", v, again, err)
			}
			return
		}
		k := storedKinds[which]
		v, err := k.decode("id", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		first, err := k.encode(v)
		if err != nil {
			t.Fatalf("a %s read cannot be written: %v", k.kind.name, err)
		}
		v2, err := k.decode("id", first)
		if err != nil {
			t.Fatalf("a %s written cannot be read: %v", k.kind.name, err)
		}
		second, err := k.encode(v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("%s written twice differs:\n% x\n% x", k.kind.name, first, second)
		}
	})
}
