package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AuditKind names what an audit entry records.
type AuditKind string

const (
	AuditRequestSubmitted AuditKind = "request.submitted"
	AuditRequestExpired   AuditKind = "request.expired"
	AuditRequestCancelled AuditKind = "request.cancelled"
	AuditRequestThrottled AuditKind = "request.throttled"
	AuditRequestRefused   AuditKind = "request.refused" // by policy, at submission
	AuditDecision         AuditKind = "request.decided"
	AuditTokenIssued      AuditKind = "token.issued"
	AuditGrantUsed        AuditKind = "grant.used"
	AuditGrantExpired     AuditKind = "grant.expired"
	AuditGrantRevoked     AuditKind = "grant.revoked"
	AuditGrantCompleted   AuditKind = "grant.completed"
	AuditAgentRevoked     AuditKind = "agent.revoked"
	AuditAgentReleased    AuditKind = "agent.released"
	AuditAllRevoked       AuditKind = "all.revoked"
	AuditFrozen           AuditKind = "issuer.frozen"
	AuditUnfrozen         AuditKind = "issuer.unfrozen"
	AuditKeyRotated       AuditKind = "key.rotated"
)

// AuditEntry is one link of the tamper-evident log. Hash is SHA-256 over
// Prev and the entry's stored bytes (Body), so changing, removing or
// reordering any entry breaks every hash after it, and adding a field to
// this struct never breaks the entries written before it. Entries written
// before the stored bytes were kept (Body empty) are hashed over their
// canonical JSON with Hash empty, as they were then.
type AuditEntry struct {
	Seq       uint64          `json:"seq"`
	At        time.Time       `json:"at"`
	Kind      AuditKind       `json:"kind"`
	Actor     string          `json:"actor"` // "operator:iss|sub", "agent:id" or "system"
	Operator  *Operator       `json:"operator,omitempty"`
	AgentID   string          `json:"agent_id,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	GrantID   string          `json:"grant_id,omitempty"`
	JTI       string          `json:"jti,omitempty"`
	Message   string          `json:"message,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Prev      string          `json:"prev"` // hex hash of the previous entry; "" for the first
	Hash      string          `json:"hash"`
	// Body is the entry as stored, the bytes Hash covers (without Prev and
	// Hash); the store keeps it and fills it in when it reads the entry.
	Body json.RawMessage `json:"-"`
}

// ComputeHash returns the hash the entry must carry given its Prev: over
// its stored bytes, or, for an entry stored before those were kept, over
// its canonical JSON.
func (e *AuditEntry) ComputeHash() (string, error) {
	h := sha256.New()
	h.Write([]byte(e.Prev))
	if len(e.Body) > 0 {
		h.Write(e.Body)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	c := *e
	c.Hash = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode audit entry %d: %w", e.Seq, err)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Seal encodes the entry once as the bytes to store (Body), and sets Prev
// and Hash, chaining it after prev ("" for the first).
func (e *AuditEntry) Seal(prev string) error {
	c := *e
	c.Prev, c.Hash, c.Body = "", "", nil
	body, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encode audit entry %d: %w", e.Seq, err)
	}
	e.Prev, e.Body = prev, body
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// ChainError reports the first entry that breaks the audit chain.
type ChainError struct {
	Seq    uint64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", e.Seq, e.Reason)
}

// ChainVerifier checks entries one at a time, in order.
type ChainVerifier struct {
	prev    string
	nextSeq uint64
	Count   uint64
}

// Check verifies the next entry of the chain.
func (v *ChainVerifier) Check(e *AuditEntry) error {
	if v.nextSeq != 0 && e.Seq != v.nextSeq {
		return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected entry %d next", v.nextSeq)}
	}
	if e.Prev != v.prev {
		return &ChainError{Seq: e.Seq, Reason: "previous-hash link does not match the entry before it"}
	}
	h, err := e.ComputeHash()
	if err != nil {
		return &ChainError{Seq: e.Seq, Reason: err.Error()}
	}
	if !bytes.Equal([]byte(h), []byte(e.Hash)) {
		return &ChainError{Seq: e.Seq, Reason: "content does not match its hash (entry altered)"}
	}
	v.prev, v.nextSeq = e.Hash, e.Seq+1
	v.Count++
	return nil
}

// VerifyAuditLog is writ's one audit verifier: it walks the whole chain in
// one read transaction and returns how many entries verify. A broken chain
// (an entry altered, moved, removed or unreadable as an entry: tampering)
// is a *ChainError naming the first bad entry; any other error means the
// log could not be read at all, which says nothing about tampering.
func VerifyAuditLog(ctx context.Context, st Store) (uint64, error) {
	var v ChainVerifier
	err := st.View(ctx, func(tx TxReader) error {
		return tx.ForEachAudit(1, func(e *AuditEntry) error {
			if v.Count%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return v.Check(e)
		})
	})
	if err != nil {
		if _, broken := errors.AsType[*ChainError](err); !broken {
			err = &AuditReadError{Err: err}
		}
	}
	return v.Count, err
}

// AuditReadError says the audit log could not be read (I/O, a closed
// store, cancellation): not evidence of tampering.
type AuditReadError struct{ Err error }

func (e *AuditReadError) Error() string { return "could not read the audit log: " + e.Err.Error() }
func (e *AuditReadError) Unwrap() error { return e.Err }

func auditData(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
