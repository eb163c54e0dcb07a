package brokertest

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/writhq/writ/broker"
)

// The buckets of the store, named as package store names its bbolt
// buckets, with the same key layouts: "time" is 8 bytes (timeKey), ‖ is
// concatenation. Values are the JSON of the broker type.
const (
	bucketIssuer          = "issuer"            // "state" → IssuerState
	bucketAgents          = "agents"            // agent id → AgentState
	bucketRequests        = "requests"          // request id → TaskRequest
	bucketRequestsPending = "requests_pending"  // time(CreatedAt) ‖ id → empty; pending requests only
	bucketDecisions       = "decisions"         // decision id → Decision
	bucketGrants          = "grants"            // grant id → Grant
	bucketGrantsByCreated = "grants_by_created" // time(CreatedAt) ‖ id → empty; every grant
	bucketGrantsActive    = "grants_active"     // time(CreatedAt) ‖ id → empty; active grants only
	bucketDue             = "due"               // time(At) ‖ kind ‖ id → empty; kind 'r' or 'g'
	bucketTokens          = "tokens"            // jti → Token
	bucketRevocations     = "revocations"       // revocation id → Revocation
	bucketSigningKeys     = "signing_keys"      // kid → SigningKey
)

var allBuckets = []string{
	bucketIssuer, bucketAgents, bucketRequests, bucketRequestsPending, bucketDecisions,
	bucketGrants, bucketGrantsByCreated, bucketGrantsActive, bucketDue,
	bucketTokens, bucketRevocations, bucketSigningKeys,
}

const keyIssuerState = "state"

// recordBucket names the bucket of a record namespace; the prefix keeps
// it apart from the buckets above.
func recordBucket(ns string) string { return "records/" + ns }

// maxIDLen bounds record ids, as the bbolt store does (its keys are at
// most 32 KiB).
const maxIDLen = 1024

const timeKeyLen = 8

var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

// timeKey is t as 8 bytes that sort in time order: Unix nanoseconds,
// big-endian, sign bit flipped. The zero Time and instants before 1678
// take the smallest key (due first), instants after 2262 the largest; as
// package store does.
func timeKey(t time.Time) string {
	var n int64
	switch {
	case t.IsZero() || t.Before(minKeyTime):
		n = math.MinInt64
	case t.After(maxKeyTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return string(binary.BigEndian.AppendUint64(nil, uint64(n)^(1<<63)))
}

// timeFromKey decodes timeKey; the smallest key decodes as the zero Time.
func timeFromKey(k string) time.Time {
	n := int64(binary.BigEndian.Uint64([]byte(k[:timeKeyLen])) ^ (1 << 63))
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func timeIDKey(t time.Time, id string) string { return timeKey(t) + id }

func idFromTimeIDKey(k string) (string, error) {
	if len(k) <= timeKeyLen {
		return "", fmt.Errorf("index key %x is too short", k)
	}
	return k[timeKeyLen:], nil
}

const (
	dueKindRequest = 'r'
	dueKindGrant   = 'g'
)

func dueKey(at time.Time, kind byte, id string) string {
	return timeKey(at) + string(kind) + id
}

func decodeDue(k string) (broker.Due, error) {
	if len(k) <= timeKeyLen+1 {
		return broker.Due{}, fmt.Errorf("expiry index key %x is too short", k)
	}
	d := broker.Due{At: timeFromKey(k), ID: k[timeKeyLen+1:]}
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
