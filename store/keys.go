package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/writhq/writ/broker"
)

// Bounds of times representable as int64 Unix nanoseconds.
var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

const timeKeyLen = 8

// putTimeKey writes t as 8 bytes that sort in time order: Unix nanoseconds,
// big-endian, with the sign bit flipped so instants before 1970 sort before
// those after. The zero Time and instants before 1678 take the smallest key
// (due first: an unknown deadline fails toward less access); instants after
// 2262 take the largest.
func putTimeKey(b []byte, t time.Time) {
	var n int64
	switch {
	case t.IsZero() || t.Before(minKeyTime):
		n = math.MinInt64
	case t.After(maxKeyTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	binary.BigEndian.PutUint64(b, uint64(n)^(1<<63))
}

// timeFromKey decodes putTimeKey; the smallest key decodes as the zero Time.
func timeFromKey(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// timeIDKey is time ‖ id, the key of the by-creation indexes.
func timeIDKey(t time.Time, id string) []byte {
	k := make([]byte, timeKeyLen+len(id))
	putTimeKey(k, t)
	copy(k[timeKeyLen:], id)
	return k
}

// idFromTimeIDKey returns the id of a timeIDKey.
func idFromTimeIDKey(k []byte) (string, error) {
	if len(k) <= timeKeyLen {
		return "", fmt.Errorf("index key %x is too short", k)
	}
	return string(k[timeKeyLen:]), nil
}

// Kind bytes of the expiry index.
const (
	dueKindRequest byte = 'r'
	dueKindGrant   byte = 'g'
)

// dueKey is time(at) ‖ kind ‖ id, the key of bucketDue.
func dueKey(at time.Time, kind byte, id string) []byte {
	k := make([]byte, timeKeyLen+1+len(id))
	putTimeKey(k, at)
	k[timeKeyLen] = kind
	copy(k[timeKeyLen+1:], id)
	return k
}

// decodeDue turns a bucketDue key into a broker.Due.
func decodeDue(k []byte) (broker.Due, error) {
	if len(k) <= timeKeyLen+1 {
		return broker.Due{}, fmt.Errorf("expiry index key %x is too short", k)
	}
	d := broker.Due{At: timeFromKey(k), ID: string(k[timeKeyLen+1:])}
	switch k[timeKeyLen] {
	case dueKindRequest:
		d.Kind = broker.DueRequest
	case dueKindGrant:
		d.Kind = broker.DueGrant
	default:
		return broker.Due{}, fmt.Errorf("expiry index key %x has unknown kind %q", k, k[timeKeyLen])
	}
	return d, nil
}

// seqKey is a big-endian uint64, the key of the audit and signal buckets.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

// seqFromKey decodes seqKey.
func seqFromKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("sequence key %x is not 8 bytes", k)
	}
	return binary.BigEndian.Uint64(k), nil
}

// schemaValue encodes a schema version, big-endian uint32.
func schemaValue(v uint32) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), v)
}
