package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// Every bucket of a writ store, with its key and value layout. Keys are
// big-endian or fixed-width so a cursor scan comes out in order; values are
// the stored type of the broker type named (stored.go: versioned, version 0
// being the broker struct's JSON) unless noted. "time" in a key is 8 bytes, see
// timeKey; "seq" is a big-endian uint64; ‖ is concatenation.
var (
	// bucketMeta identifies the file: "magic" → "writ"; "schema" → the
	// schema version, big-endian uint32.
	bucketMeta = []byte("meta")

	// bucketIssuer: "state" → storedIssuer (broker.IssuerState).
	bucketIssuer = []byte("issuer")

	// bucketAgents: agent id → storedAgent (broker.AgentState).
	bucketAgents = []byte("agents")

	// bucketRequests: request id → storedRequest (broker.TaskRequest).
	bucketRequests = []byte("requests")
	// bucketRequestsPending: time(CreatedAt) ‖ request id → empty. Pending requests only.
	bucketRequestsPending = []byte("requests_pending")

	// bucketDecisions: decision id → storedDecision (broker.Decision).
	bucketDecisions = []byte("decisions")

	// bucketGrants: grant id → storedGrant (broker.Grant).
	bucketGrants = []byte("grants")
	// bucketGrantsByCreated: time(CreatedAt) ‖ grant id → empty. Every grant.
	bucketGrantsByCreated = []byte("grants_by_created")
	// bucketGrantsActive: time(CreatedAt) ‖ grant id → empty. Active grants only.
	bucketGrantsActive = []byte("grants_active")

	// bucketDue is the expiry index: time(At) ‖ kind byte ‖ id → empty, where
	// kind is 'r' (a pending request at its Deadline) or 'g' (an active grant
	// at its ExpiresAt).
	bucketDue = []byte("due")

	// bucketTokens: jti → storedToken (broker.Token).
	bucketTokens = []byte("tokens")

	// bucketRevocations: revocation id → storedRevocation (broker.Revocation).
	bucketRevocations = []byte("revocations")

	// bucketAudit: seq → a broker.AuditEntry's links and its bytes as hashed
	// (version 2, see storedAudit in audit.go), hash-chained. Append-only, so
	// written with FillPercent 0.9.
	bucketAudit = []byte("audit")

	// bucketSignals: seq → storedSignal (broker.Signal), the revocation feed. Append-mostly,
	// FillPercent 0.9. The bucket's sequence holds the last Seq assigned.
	bucketSignals = []byte("signals")

	// bucketSigningKeys: kid → storedSigningKey (broker.SigningKey, with its private JWK).
	bucketSigningKeys = []byte("signing_keys")

	// bucketRecords holds one nested bucket per broker.RecordNamespaces
	// entry, named by the namespace: record id → the caller's opaque bytes behind a
	// version header (encodeRecord).
	bucketRecords = []byte("records")
)

// topBuckets lists every top-level bucket, for creation on open.
var topBuckets = [][]byte{
	bucketMeta, bucketIssuer, bucketAgents,
	bucketRequests, bucketRequestsPending,
	bucketDecisions,
	bucketGrants, bucketGrantsByCreated, bucketGrantsActive,
	bucketDue, bucketTokens, bucketRevocations,
	bucketAudit, bucketSignals, bucketSigningKeys, bucketRecords,
}

// obsoleteBuckets are indexes an older writ kept and nothing reads any
// more (every request by creation time; active grants by agent). A store
// opened for writing drops them, so they never hold stale entries.
var obsoleteBuckets = [][]byte{[]byte("requests_by_created"), []byte("grants_by_agent")}

// Keys of bucketMeta and bucketIssuer.
var (
	keyMagic       = []byte("magic")
	keySchema      = []byte("schema")
	keyIssuerState = []byte("state")
)

// magic marks a bbolt file as a writ store.
const magic = "writ"

// schemaVersion is the layout this code reads and writes. Bump it, and add
// a migration in ensureBuckets, when a change needs existing data rewritten,
// or when an older writ could not read what this one writes.
//
// 2: records are stored types (stored.go). A schema-1 store is read as it
// is (its records are version 0) and marked 2 when opened for writing, so
// a writ of schema 1 refuses it plainly instead of failing on each record.
const schemaVersion uint32 = 2

// appendFill is the FillPercent of append-only buckets: pages are filled
// fuller because nothing is inserted between existing keys.
const appendFill = 0.9

// missingBuckets reports whether any bucket of the current layout is absent.
func missingBuckets(tx *bolt.Tx) bool {
	for _, name := range topBuckets {
		if tx.Bucket(name) == nil {
			return true
		}
	}
	for _, name := range obsoleteBuckets {
		if tx.Bucket(name) != nil {
			return true
		}
	}
	records := tx.Bucket(bucketRecords)
	for _, ns := range broker.RecordNamespaces {
		if records.Bucket([]byte(ns)) == nil {
			return true
		}
	}
	return olderSchema(tx.Bucket(bucketMeta))
}

// olderSchema reports whether the store is marked with a schema older
// than schemaVersion (open has checked the value is well formed).
func olderSchema(meta *bolt.Bucket) bool {
	v := meta.Get(keySchema)
	return len(v) == 4 && binary.BigEndian.Uint32(v) < schemaVersion
}

// ensureBuckets creates every bucket that is missing, drops obsolete ones,
// and records the magic and schema version. It is how a new store is
// initialised and how a store written by an older writ of the same schema
// gains newer buckets.
func ensureBuckets(tx *bolt.Tx) error {
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	for _, name := range obsoleteBuckets {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return fmt.Errorf("drop obsolete bucket %s: %w", name, err)
		}
	}
	records := tx.Bucket(bucketRecords)
	for _, ns := range broker.RecordNamespaces {
		if _, err := records.CreateBucketIfNotExists([]byte(ns)); err != nil {
			return fmt.Errorf("create record bucket %s: %w", ns, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyMagic) == nil {
		if err := meta.Put(keyMagic, []byte(magic)); err != nil {
			return fmt.Errorf("write store magic: %w", err)
		}
	}
	if meta.Get(keySchema) == nil || olderSchema(meta) {
		if err := meta.Put(keySchema, schemaValue(schemaVersion)); err != nil {
			return fmt.Errorf("write store schema: %w", err)
		}
	}
	return nil
}
