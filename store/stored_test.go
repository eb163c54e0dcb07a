package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// storedKind is one kind of stored record, through its broker type.
type storedKind struct {
	kind   recordKind
	zero   func() any // a new zero broker value, as a pointer
	encode func(v any) ([]byte, error)
	decode func(id string, data []byte) (any, error)
}

var storedKinds = []storedKind{
	{kindRequest, func() any { return new(broker.TaskRequest) },
		func(v any) ([]byte, error) { return encodeRequest(v.(*broker.TaskRequest)), nil },
		func(id string, b []byte) (any, error) { return decodeRequest(id, b) }},
	{kindDecision, func() any { return new(broker.Decision) },
		func(v any) ([]byte, error) { return encodeDecision(v.(*broker.Decision)), nil },
		func(id string, b []byte) (any, error) { return decodeDecision(id, b) }},
	{kindGrant, func() any { return new(broker.Grant) },
		func(v any) ([]byte, error) { return encodeGrant(v.(*broker.Grant)), nil },
		func(id string, b []byte) (any, error) { return decodeGrant(id, b) }},
	{kindToken, func() any { return new(broker.Token) },
		func(v any) ([]byte, error) { return encodeToken(v.(*broker.Token)), nil },
		func(id string, b []byte) (any, error) { return decodeToken(id, b) }},
	{kindRevocation, func() any { return new(broker.Revocation) },
		func(v any) ([]byte, error) { return encodeRevocation(v.(*broker.Revocation)), nil },
		func(id string, b []byte) (any, error) { return decodeRevocation(id, b) }},
	{kindIssuer, func() any { return new(broker.IssuerState) },
		func(v any) ([]byte, error) { return encodeIssuer(*v.(*broker.IssuerState)), nil },
		func(_ string, b []byte) (any, error) { s, err := decodeIssuer(b); return &s, err }},
	{kindAgent, func() any { return new(broker.AgentState) },
		func(v any) ([]byte, error) { return encodeAgent(*v.(*broker.AgentState)), nil },
		func(id string, b []byte) (any, error) { s, err := decodeAgent(id, b); return &s, err }},
	{kindSigningKey, func() any { return new(broker.SigningKey) },
		func(v any) ([]byte, error) { return encodeSigningKey(*v.(*broker.SigningKey)), nil },
		func(id string, b []byte) (any, error) { k, err := decodeSigningKey(id, b); return &k, err }},
	{kindSignal, func() any { return new(broker.Signal) },
		func(v any) ([]byte, error) { return encodeSignal(v.(*broker.Signal)) },
		func(_ string, b []byte) (any, error) { return decodeSignal(1, b) }},
}

// fillAll sets every exported field reachable from v to a value that is
// not zero and differs from the others: lists get two elements, pointers
// a value, times a distinct instant.
func fillAll(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n) * 1_000_003)
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		v.SetUint(uint64(*n) * 1_000_003)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1_770_000_000+int64(*n), int64(*n)).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i), n)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(fmt.Appendf(nil, "bytes %d", *n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fillAll(v.Index(0), n)
		fillAll(v.Index(1), n)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem(), n)
	case reflect.Map:
		// Signal claims: JSON's own types, as they read back.
		v.Set(reflect.ValueOf(map[string]any{fmt.Sprintf("k%d", *n): fmt.Sprintf("v%d", *n), "n": float64(*n)}))
	default:
		panic(fmt.Sprintf("fillAll: no filler for %s", v.Type()))
	}
}

func filled(k storedKind) any {
	v := k.zero()
	n := 0
	fillAll(reflect.ValueOf(v).Elem(), &n)
	return v
}

// TestStoredRoundTrip writes each kind in the current version and reads it
// back equal: with every field set (a field broker gains and the stored
// type lacks fails here), with none set, and with empty lists.
func TestStoredRoundTrip(t *testing.T) {
	for _, k := range storedKinds {
		values := map[string]any{"every field": filled(k), "zero": k.zero()}
		if g, ok := filled(k).(*broker.Grant); ok {
			// Empty and nil lists stay apart, as they did in JSON.
			g.Children, g.Terms.Scopes, g.Terms.Details = []string{}, []string{}, []broker.AuthorizationDetail{{Locations: []string{}}}
			values["empty lists"] = g
		}
		for name, v := range values {
			t.Run(k.kind.name+"/"+name, func(t *testing.T) {
				data, err := k.encode(v)
				if err != nil {
					t.Fatal(err)
				}
				if data[0] != storedMarker || data[1] != storedV1 || data[2] != k.kind.tag {
					t.Fatalf("header % x, want marker, version 1, tag %q", data[:3], k.kind.tag)
				}
				got, err := k.decode("id-1", data)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, v) {
					gj, _ := json.Marshal(got)
					wj, _ := json.Marshal(v)
					t.Errorf("read back differs (a field of the broker type not in the stored type?)\n got %s\nwant %s", gj, wj)
				}
			})
		}
	}
}

// TestStoredReadsAsJSONDid checks that a value written in the current
// version reads back as the same value written in version 0 (main's JSON)
// does: the instant and the zone offset of times, nil and empty lists.
func TestStoredReadsAsJSONDid(t *testing.T) {
	east := time.FixedZone("CEST", 2*3600)
	times := map[string]time.Time{
		"zero":            {},
		"UTC":             fx0,
		"fixed zone":      fx0.In(east),
		"odd offset":      fx0.In(time.FixedZone("", -(3*3600 + 30*60))),
		"local":           fx0.Local(),
		"before 1970":     time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC),
		"monotonic clock": time.Now(),
	}
	for name, at := range times {
		t.Run(name, func(t *testing.T) {
			k := &broker.Token{JTI: "j", IssuedAt: at, ExpiresAt: at.Add(time.Nanosecond)}
			v0, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			fromV0, err := decodeToken("j", v0)
			if err != nil {
				t.Fatal(err)
			}
			fromV1, err := decodeToken("j", encodeToken(k))
			if err != nil {
				t.Fatal(err)
			}
			// Equal JSON: the same instant in the same zone offset.
			j0, _ := json.Marshal(fromV0)
			j1, _ := json.Marshal(fromV1)
			if string(j0) != string(j1) {
				t.Errorf("current version reads %s, version 0 reads %s", j1, j0)
			}
			if !fromV1.IssuedAt.Equal(at) {
				t.Errorf("instant %v, want %v", fromV1.IssuedAt, at)
			}
		})
	}
}

// TestStoredErrors feeds values that cannot be read: each error names the
// kind and the id, and the version when there is one.
func TestStoredErrors(t *testing.T) {
	good := encodeGrant(fixtureGrant())
	with := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", []byte{}, []string{`stored grant "g-x"`, "empty"}},
		{"future version", []byte{storedMarker, 7, 'g', 0}, []string{`stored grant "g-x"`, "format version 7", "does not know", "upgrade writ"}},
		{"huge version", []byte{storedMarker, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'g'}, []string{`stored grant "g-x"`, "format version 18446744073709551615"}},
		{"malformed version", []byte{storedMarker, 0x80}, []string{`stored grant "g-x"`, "malformed format version"}},
		{"another kind", encodeToken(fixtureToken()), []string{`stored grant "g-x"`, "holds a stored token instead of a grant"}},
		{"unknown tag", with(func(b []byte) []byte { b[2] = '?'; return b }), []string{`stored grant "g-x"`, `tag '?'`}},
		{"truncated", good[:len(good)-5], []string{`stored grant "g-x" (format version 1) is corrupt`, "runs past the end"}},
		{"trailing bytes", append(append([]byte(nil), good...), 0), []string{`stored grant "g-x" (format version 1) is corrupt`, "1 bytes follow the last field"}},
		{"string past the end", []byte{storedMarker, 1, 'g', 0x7f, 'a'}, []string{`stored grant "g-x" (format version 1) is corrupt`, "field of 127 bytes runs past the end"}},
		{"huge list", []byte{storedMarker, 1, 'g', 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, []string{"corrupt", "list of 4294967294 elements runs past the end"}},
		// A request whose fields are all empty up to its policy's presence byte.
		{"bad bool", append([]byte{storedMarker, 1, 'r', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 7, 0), nil},
		{"not JSON", []byte(`{"id":`), []string{`stored grant "g-x"`, "not valid version-0 JSON"}},
		{"wrong JSON type", []byte(`{"uses":"many"}`), []string{`stored grant "g-x"`, "not valid version-0 JSON"}},
		{"text", []byte("hello"), []string{`stored grant "g-x"`, "starts with byte 0x68"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decode := func() error { _, err := decodeGrant("g-x", tt.data); return err }
			if tt.name == "bad bool" {
				decode = func() error { _, err := decodeRequest("g-x", tt.data); return err }
				tt.want = []string{`stored request "g-x" (format version 1) is corrupt`, "at byte 20: boolean byte 7 is neither 0 nor 1"}
			}
			err := decode()
			var se *storedError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *storedError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestCorruptRecordThroughTx reads corrupt and future values through the
// transaction API: the error names the kind and the id, and no walk
// skips them silently.
func TestCorruptRecordThroughTx(t *testing.T) {
	s := MustOpen(t)
	update(t, s, func(tx broker.Tx) error {
		if err := tx.PutGrant(sampleGrant("g1", "a", broker.GrantActive, t0)); err != nil {
			return err
		}
		return tx.PutAgentState(broker.AgentState{ID: "agent-1"})
	})
	err := s.db.Update(func(btx *bolt.Tx) error {
		if err := btx.Bucket(bucketGrants).Put([]byte("g1"), []byte{storedMarker, 1, 'g', 0x40}); err != nil {
			return err
		}
		return btx.Bucket(bucketAgents).Put([]byte("agent-1"), []byte{storedMarker, 9, 'a'})
	})
	if err != nil {
		t.Fatal(err)
	}
	reads := map[string]func(tx broker.TxReader) error{
		"Grant":              func(tx broker.TxReader) error { _, err := tx.Grant("g1"); return err },
		"ForEachActiveGrant": func(tx broker.TxReader) error { return tx.ForEachActiveGrant(func(*broker.Grant) error { return nil }) },
		"AgentState":         func(tx broker.TxReader) error { _, err := tx.AgentState("agent-1"); return err },
		"ForEachAgentState": func(tx broker.TxReader) error {
			return tx.ForEachAgentState(func(broker.AgentState) error { return nil })
		},
	}
	want := map[string]string{
		"Grant": `stored grant "g1" (format version 1) is corrupt`, "ForEachActiveGrant": `stored grant "g1" (format version 1) is corrupt`,
		"AgentState":        `stored agent state "agent-1" (format version 9) is of a format version this writ does not know`,
		"ForEachAgentState": `stored agent state "agent-1" (format version 9)`,
	}
	for name, read := range reads {
		err := s.View(t.Context(), read)
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want one saying %q", name, err, want[name])
		}
	}
	// Writing over a corrupt grant reads it first (for the indexes): refused.
	err = s.Update(t.Context(), func(tx broker.Tx) error { return tx.PutGrant(sampleGrant("g1", "a", broker.GrantRevoked, t0)) })
	if err == nil || !strings.Contains(err.Error(), `stored grant "g1"`) {
		t.Errorf("PutGrant over a corrupt grant: %v", err)
	}
}

// TestRecordEnvelope: a namespace record keeps the caller's bytes exactly
// (none, empty, or starting with the marker byte), a version-0 record is
// its bytes, and a record of an unknown version is refused by name.
func TestRecordEnvelope(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte(`{"a":1}`), {storedMarker, 1, 'x'}} {
		got, err := decodeRecord("ns", "id", encodeRecord(v))
		if err != nil || !bytes.Equal(got, v) || got == nil {
			t.Errorf("record %q reads back as %q, %v", v, got, err)
		}
	}
	if got, err := decodeRecord("ns", "id", []byte("17")); err != nil || string(got) != "17" {
		t.Errorf("version-0 record reads as %q, %v", got, err)
	}
	_, err := decodeRecord("ssf.cursor", "s1", []byte{storedMarker, 5, 'x', '1'})
	if want := `stored record "ssf.cursor/s1" (format version 5) is of a format version this writ does not know`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("future record: %v, want %q", err, want)
	}
	_, err = decodeRecord("ssf.cursor", "s1", encodeGrant(fixtureGrant()))
	if want := `stored record "ssf.cursor/s1" (format version 1) holds a stored grant instead of a record`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("grant as a record: %v, want %q", err, want)
	}
}
