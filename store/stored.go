package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"
)

// Stored records. Every record writ keeps is written as a stored type of
// this package (stored_*.go), never as a broker struct, so the file format
// changes only when a stored type's version does. Each kind converts to and
// from its broker type in one place.
//
// A value written since version 1 is
//
//	storedMarker ‖ uvarint(version) ‖ kind tag ‖ fields
//
// with the fields in the order the kind's encodeV1 writes them, each in one
// of the forms below. A value that starts with '{' is version 0: the JSON of
// the broker struct, as writ wrote it before stored types, read through the
// stored type's frozen JSON tags. Any other value is corrupt. A version this
// writ does not know is an error naming the kind, the id and the version,
// never a guess.
//
// Field forms, all integers as Go's varints (encoding/binary):
//
//	string     uvarint(len) ‖ bytes (stored as given: ids and text stay
//	           legible in a hex dump)
//	list       uvarint(0) for nil, uvarint(n+1) ‖ n elements: nil and empty
//	           stay apart, as they do in version 0's JSON
//	bytes      a list of bytes
//	bool       one byte, 0 or 1
//	int        varint; uint: uvarint
//	duration   varint nanoseconds
//	time       one byte: 0 the zero Time; 1 UTC; 2 another zone, then
//	           varint(offset seconds); then varint(Unix seconds) ‖
//	           uvarint(nanoseconds) for 1 and 2
//	optional   one byte, 0 absent or 1 present, then the value
//
// Adding, removing or reordering a field is a new version: bump the kind's
// version, keep decoding the older ones, and extend the fixtures of
// stored_compat_test.go.
const (
	// storedMarker opens every versioned value. It can start neither JSON
	// nor UTF-8 text, so no version-0 value starts with it.
	storedMarker byte = 0xF7

	// storedV1 is the version every kind is written in today, but audit
	// entries (auditV2, audit.go).
	storedV1 = 1
)

// recordKind names a kind of stored record: name for errors, tag in the
// stored value, so a value moved to the wrong bucket is found out.
type recordKind struct {
	name string
	tag  byte
}

var (
	kindRequest    = recordKind{"request", 'r'}
	kindDecision   = recordKind{"decision", 'd'}
	kindGrant      = recordKind{"grant", 'g'}
	kindToken      = recordKind{"token", 't'}
	kindRevocation = recordKind{"revocation", 'v'}
	kindIssuer     = recordKind{"issuer state", 'i'}
	kindAgent      = recordKind{"agent state", 'a'}
	kindSigningKey = recordKind{"signing key", 'k'}
	kindSignal     = recordKind{"signal", 's'}
	kindRecord     = recordKind{"record", 'x'}
)

// storedError is a stored value that cannot be read: corrupt, of another
// kind, or of a version this writ does not know.
type storedError struct {
	kind    string
	id      string
	version uint64 // 0 when the value has no readable version
	reason  string
	err     error
}

func (e *storedError) Error() string {
	msg := fmt.Sprintf("stored %s %q", e.kind, e.id)
	if e.version > 0 {
		msg += fmt.Sprintf(" (format version %d)", e.version)
	}
	msg += " " + e.reason
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *storedError) Unwrap() error { return e.err }

// A stored type has, per kind:
//
//	encodeV1(*encoder)   writes its fields in the current version
//	decodeV1(*decoder)   reads them back
//
// and JSON tags for version 0. The kind's encodeX and decodeX call them
// directly, not through an interface, so the stored value stays on the
// stack.

// newStoredEncoder starts a value of kind k in the current version; its
// done returns the value.
func newStoredEncoder(k recordKind) *encoder {
	e := encoders.Get().(*encoder)
	e.b = append(e.b[:0], storedMarker)
	e.b = binary.AppendUvarint(e.b, storedV1)
	e.b = append(e.b, k.tag)
	return e
}

// done returns the value written and releases e.
func (e *encoder) done() []byte {
	// bbolt keeps the value until the commit, so it gets its own exact-size
	// copy and the scratch buffer goes back to the pool.
	out := make([]byte, len(e.b))
	copy(out, e.b)
	if cap(e.b) <= maxPooledEncoder {
		encoders.Put(e)
	}
	return out
}

// maxPooledEncoder bounds the scratch buffers kept for reuse, so one huge
// record does not pin its buffer.
const maxPooledEncoder = 64 << 10

var encoders = sync.Pool{New: func() any { return &encoder{b: make([]byte, 0, 1024)} }}

// openStored reads the header of data, the value of record id of kind k.
// v0 reports a version-0 value (decode it with decodeV0); otherwise d
// reads the fields of the current version, and d.close ends the reading.
// data may be bbolt's memory: d keeps a copy.
func openStored(k recordKind, id string, data []byte) (d decoder, v0 bool, err error) {
	fail := func(version uint64, reason string) error {
		return &storedError{kind: k.name, id: id, version: version, reason: reason}
	}
	switch {
	case len(data) == 0:
		return d, false, fail(0, "is empty (corrupt)")
	case data[0] == '{':
		return d, true, nil
	case data[0] != storedMarker:
		return d, false, fail(0, fmt.Sprintf("starts with byte %#02x, neither a format version nor JSON (corrupt)", data[0]))
	}
	version, n := binary.Uvarint(data[1:])
	if n <= 0 {
		return d, false, fail(0, "has a malformed format version (corrupt)")
	}
	rest := data[1+n:]
	if version != storedV1 {
		return d, false, fail(version, "is of a format version this writ does not know (written by a newer writ? upgrade writ)")
	}
	if len(rest) == 0 || rest[0] != k.tag {
		got := "nothing"
		if len(rest) > 0 {
			got = fmt.Sprintf("tag %q", rest[0])
			if other := kindOfTag(rest[0]); other != "" {
				got = "a stored " + other
			}
		}
		return d, false, fail(version, "holds "+got+" instead of a "+k.name+" (corrupt or moved)")
	}
	return decoder{s: string(rest[1:]), base: len(data) - len(rest) + 1, kind: k, id: id, version: version}, false, nil
}

// close ends reading a value: every byte read, no field broken.
func (d *decoder) close() error {
	if d.err == nil && d.off != len(d.s) {
		d.fail("%d bytes follow the last field", len(d.s)-d.off)
	}
	if d.err != nil {
		return &storedError{kind: d.kind.name, id: d.id, version: d.version, reason: "is corrupt", err: d.err}
	}
	return nil
}

// decodeV0 fills s from a version-0 value: JSON, read through the stored
// type's tags, which are those of the broker struct as it was then, over
// what s holds (as version 0's reader did).
func decodeV0[S any](k recordKind, id string, data []byte, s *S) error {
	v := new(S)
	*v = *s
	if err := json.Unmarshal(data, v); err != nil {
		return &storedError{kind: k.name, id: id, reason: "is not valid version-0 JSON (corrupt)", err: err}
	}
	*s = *v
	return nil
}

// kindOfTag names the kind whose tag is t, "" for none.
func kindOfTag(t byte) string {
	for _, k := range []recordKind{kindRequest, kindDecision, kindGrant, kindToken, kindRevocation,
		kindIssuer, kindAgent, kindSigningKey, kindSignal, kindRecord} {
		if k.tag == t {
			return k.name
		}
	}
	return ""
}

// encoder appends fields in the forms of the package comment.
type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) duration(v time.Duration) { e.int(int64(v)) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) string(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// listLen writes the length of a list of n elements, nil or not.
func (e *encoder) listLen(n int, isNil bool) {
	if isNil {
		e.uint(0)
		return
	}
	e.uint(uint64(n) + 1)
}

func (e *encoder) strings(v []string) {
	e.listLen(len(v), v == nil)
	for _, s := range v {
		e.string(s)
	}
}

func (e *encoder) bytes(v []byte) {
	e.listLen(len(v), v == nil)
	e.b = append(e.b, v...)
}

// Zone forms of a stored time.
const (
	timeZero  = 0
	timeUTC   = 1
	timeZoned = 2
)

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, timeZero)
		return
	}
	if _, off := t.Zone(); off == 0 {
		e.b = append(e.b, timeUTC)
	} else {
		e.b = append(e.b, timeZoned)
		e.int(int64(off))
	}
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

func (e *encoder) present(ok bool) bool {
	e.bool(ok)
	return ok
}

// decoder reads fields in the forms of the package comment from s, one
// copy of the stored value: the strings it returns share it, so a record
// costs one allocation for all its text. The flip side: a string kept
// from a record keeps the whole record's text alive, so code that keeps
// ids of many records for long (broker.seedHistory) clones them. The
// first error sticks; after it
// every read returns a zero value.
type decoder struct {
	s    string
	off  int
	base int // where s starts in the stored value, for errors
	err  error

	// What is read, for close's error.
	kind    recordKind
	id      string
	version uint64
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: "+format, append([]any{d.base + d.off}, args...)...)
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	// binary.Uvarint takes bytes; reading the string in place avoids a copy.
	var v uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off+i >= len(d.s) {
			d.fail("a number runs past the end")
			return 0
		}
		c := d.s[d.off+i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.off += i + 1
			return v | uint64(c)<<shift
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail("a number overflows 64 bits")
	return 0
}

func (d *decoder) int() int64 {
	u := d.uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// intN reads an int that must fit Go's int.
func (d *decoder) intN() int {
	v := d.int()
	if v < math.MinInt || v > math.MaxInt {
		d.fail("number %d does not fit an int", v)
		return 0
	}
	return int(v)
}

func (d *decoder) duration() time.Duration { return time.Duration(d.int()) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.s) {
		d.fail("a field runs past the end")
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

func (d *decoder) bool() bool {
	switch c := d.byte(); c {
	case 0:
		return false
	case 1:
		return true
	default:
		d.off--
		d.fail("boolean byte %d is neither 0 nor 1", c)
		return false
	}
}

// take returns the next n bytes of the value.
func (d *decoder) take(n uint64) string {
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.off) {
		d.fail("a field of %d bytes runs past the end", n)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) string() string { return d.take(d.uint()) }

// listLen reads the length of a list whose elements take at least
// minSize bytes each, so a corrupt length cannot make the reader allocate
// more than a small multiple of the value's size. isNil reports a nil list.
func (d *decoder) listLen(minSize int) (n int, isNil bool) {
	v := d.uint()
	if d.err != nil || v == 0 {
		return 0, true
	}
	if v-1 > uint64((len(d.s)-d.off)/minSize) {
		d.fail("a list of %d elements runs past the end", v-1)
		return 0, true
	}
	return int(v - 1), false
}

func (d *decoder) strings() []string {
	n, isNil := d.listLen(1)
	if isNil {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return v
}

func (d *decoder) bytes() []byte {
	n, isNil := d.listLen(1)
	if isNil {
		return nil
	}
	return []byte(d.take(uint64(n)))
}

func (d *decoder) time() time.Time {
	form := d.byte()
	var off int64
	switch form {
	case timeZero:
		return time.Time{}
	case timeUTC:
	case timeZoned:
		off = d.int()
		// Zone offsets on Earth are within a day; anything else is damage.
		if off <= -86400 || off >= 86400 || off == 0 {
			d.fail("zone offset %d s is not a zone's", off)
			return time.Time{}
		}
	default:
		d.off--
		d.fail("time form %d is unknown", form)
		return time.Time{}
	}
	sec, nsec := d.int(), d.uint()
	if d.err != nil {
		return time.Time{}
	}
	if sec < minStoredUnix || sec > maxStoredUnix {
		d.fail("time of %d s since 1970 is out of range", sec)
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail("nanoseconds %d are a second or more", nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if form == timeUTC {
		return t.UTC()
	}
	// As a parsed RFC 3339 time does: the local zone when its offset then
	// is this one, otherwise a zone that records the offset.
	if _, localOff := t.Zone(); int64(localOff) == off {
		return t
	}
	return t.In(time.FixedZone("", int(off)))
}

// Bounds of Unix seconds time.Unix represents without overflow (time.Time
// counts seconds from year 1 in an int64).
const (
	secondsYear1To1970 = 62135596800
	minStoredUnix      = math.MinInt64 + secondsYear1To1970
	maxStoredUnix      = math.MaxInt64 - secondsYear1To1970
)

func (d *decoder) present() bool { return d.bool() }
