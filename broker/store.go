package broker

import (
	"context"
	"time"
)

// Store is the durable state the Service needs. package store implements it
// with bbolt. Each call to View, Update or Batch is one transaction; the
// Service composes a whole operation (state change, audit entry, feed
// signal) inside one so it is all or nothing, and acknowledges it only
// after the commit.
//
// The one rule for Update versus Batch: Batch for the writes many callers
// make at once (agent submissions, redemptions, and decisions: approve,
// narrow, deny, a policy's or a standing approval's), each of whose fn
// re-reads everything it needs and so may run again; Update for what must
// neither wait for nor be retried with another caller's write: every
// revocation, freeze and unfreeze, a live grant's narrowing, key rotation,
// the expiry sweep and the use flush.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(TxReader) error) error
	// Update runs fn in a read-write transaction of its own and commits
	// durably (fsync) before returning. If fn returns an error nothing is
	// written.
	Update(ctx context.Context, fn func(Tx) error) error
	// Batch is Update with group commit: concurrent calls share one
	// transaction and one fsync. fn may run more than once, so it must be
	// idempotent.
	Batch(ctx context.Context, fn func(Tx) error) error
	// Path names the store for messages.
	Path() string
	Close() error
}

// DueKind says what an expiry index entry is for.
type DueKind string

const (
	DueRequest DueKind = "request" // a pending request's review deadline
	DueGrant   DueKind = "grant"   // an active grant's expiry
)

// Due is an entry of the ordered expiry index.
type Due struct {
	At   time.Time
	Kind DueKind
	ID   string
}

// TxReader is what a read-only transaction offers. Getters return a
// *Error with ENOTFOUND for a missing record. Records returned are copies
// owned by the caller.
type TxReader interface {
	// Issuer returns the issuer state (zero value on a new store).
	Issuer() (IssuerState, error)
	// AgentState returns the agent's mutable state (zero value with ID set
	// for an agent never seen).
	AgentState(id string) (AgentState, error)
	ForEachAgentState(fn func(AgentState) error) error

	Request(id string) (*TaskRequest, error)
	// ForEachPending visits pending requests, oldest first.
	ForEachPending(fn func(*TaskRequest) error) error
	Decision(id string) (*Decision, error)

	Grant(id string) (*Grant, error)
	// ForEachActiveGrant visits grants in state active, oldest first. Grants
	// dead by an epoch are still visited: callers check StatusOf.
	ForEachActiveGrant(fn func(*Grant) error) error
	// ForEachGrant visits every grant, oldest first.
	ForEachGrant(fn func(*Grant) error) error
	Token(jti string) (*Token, error)

	// ForEachDue visits expiry index entries with At ≤ before, earliest
	// first. In a write transaction fn may Put the record it names (which
	// removes its entry).
	ForEachDue(before time.Time, fn func(Due) error) error

	// ForEachAudit visits entries with Seq ≥ from, in order.
	ForEachAudit(from uint64, fn func(*AuditEntry) error) error
	// ForEachAuditReverse visits entries with Seq ≤ from (0: from the
	// newest), newest first.
	ForEachAuditReverse(from uint64, fn func(*AuditEntry) error) error

	// Signals returns up to max signals with Seq > after, in order.
	Signals(after uint64, max int) ([]Signal, error)
	// LastSignalSeq returns the newest signal's Seq, 0 if none.
	LastSignalSeq() (uint64, error)

	SigningKeys() ([]SigningKey, error)

	RecordReader
}

// TxWriter is what a read-write transaction adds. Every write keeps the
// record's indexes.
type TxWriter interface {
	PutIssuer(IssuerState) error
	PutAgentState(AgentState) error
	// PutRequest writes a request and keeps its indexes: pending requests
	// are in the pending index (ordered by CreatedAt) and in the expiry
	// index at their Deadline; any other state is in neither.
	PutRequest(*TaskRequest) error
	PutDecision(*Decision) error
	// PutGrant writes a grant and keeps its indexes: an active grant is in
	// the active index (ordered by CreatedAt) and in the expiry index at
	// ExpiresAt; an ended grant is in neither.
	PutGrant(*Grant) error
	PutToken(*Token) error
	PutRevocation(*Revocation) error
	// AppendAudit assigns the entry its Seq (one more than the last),
	// chains it after the last entry (Seal) and writes it.
	AppendAudit(*AuditEntry) error
	// AppendSignal assigns the signal its Seq and writes it to the feed.
	AppendSignal(*Signal) error
	PutSigningKey(SigningKey) error
	DeleteSigningKey(kid string) error
	RecordWriter
}

// Tx is a read-write store transaction.
type Tx interface {
	TxReader
	TxWriter
}

// Record namespaces. The store creates one bucket per namespace on open.
const (
	RecordSSFStream = "ssf.stream" // id: stream id; value: the stream's JSON configuration
	RecordSSFCursor = "ssf.cursor" // id: stream id; value: last delivered/acked signal seq, JSON
)

// RecordNamespaces lists every namespace, for the store to declare.
var RecordNamespaces = []string{RecordSSFStream, RecordSSFCursor, RecordStanding, RecordStoreProbe}
