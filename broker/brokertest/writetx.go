package brokertest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/writhq/writ/broker"
)

// writeTx implements broker.Tx: reads see its own writes, and the first
// write to a bucket replaces it, in this transaction's state only, with
// a copy.
type writeTx struct {
	readTx
	owned map[string]bool // buckets already copied
}

var _ broker.Tx = (*writeTx)(nil)

// writeBucket returns the named bucket, copied for this transaction.
func (t *writeTx) writeBucket(name string) (*bucket, error) {
	b, err := t.bucket(name)
	if err != nil {
		return nil, err
	}
	if !t.owned[name] {
		b = b.clone()
		t.s.buckets[name] = b
		t.owned[name] = true
	}
	return b, nil
}

// checkID refuses ids the bbolt store cannot key on, so a test passing
// here passes there.
func checkID(what, id string) error {
	switch {
	case id == "":
		return broker.Errorf(broker.EINVALID, "%s has no id", what)
	case len(id) > maxIDLen:
		return broker.Errorf(broker.EINVALID, "%s id is longer than %d bytes", what, maxIDLen)
	}
	return nil
}

// put writes the JSON of v as record id of bucket name and returns the
// bytes it replaced, if any.
func (t *writeTx) put(name, what, id string, v any) ([]byte, error) {
	if err := checkID(what, id); err != nil {
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", what, id, err)
	}
	b, err := t.writeBucket(name)
	if err != nil {
		return nil, err
	}
	prev, _ := b.get(id)
	b.put(id, data)
	return prev, nil
}

// indexKey is one key a record holds in one index bucket.
type indexKey struct{ bucket, key string }

// reindex moves a record's index keys from old to new.
func (t *writeTx) reindex(old, new []indexKey) error {
	for _, o := range old {
		if slices.Contains(new, o) {
			continue
		}
		b, err := t.writeBucket(o.bucket)
		if err != nil {
			return err
		}
		b.delete(o.key)
	}
	for _, n := range new {
		if slices.Contains(old, n) {
			continue
		}
		b, err := t.writeBucket(n.bucket)
		if err != nil {
			return err
		}
		b.put(n.key, []byte{})
	}
	return nil
}

// PutIssuer writes the issuer state.
func (t *writeTx) PutIssuer(s broker.IssuerState) error {
	_, err := t.put(bucketIssuer, "issuer state", keyIssuerState, s)
	return err
}

// PutAgentState writes an agent's state.
func (t *writeTx) PutAgentState(s broker.AgentState) error {
	_, err := t.put(bucketAgents, "agent state", s.ID, s)
	return err
}

// PutRequest writes r and moves its index keys to match its state.
func (t *writeTx) PutRequest(r *broker.TaskRequest) error {
	if r == nil {
		return broker.Errorf(broker.EINVALID, "no request to write")
	}
	data, err := t.put(bucketRequests, "request", r.ID, r)
	if err != nil {
		return err
	}
	var prev *broker.TaskRequest
	if data != nil {
		prev = new(broker.TaskRequest)
		if err := decode("request", r.ID, data, prev); err != nil {
			return err
		}
	}
	return t.reindex(requestIndex(prev), requestIndex(r))
}

// requestIndex lists the index keys a request holds in its state.
func requestIndex(r *broker.TaskRequest) []indexKey {
	if r == nil || r.State != broker.RequestPending {
		return nil
	}
	return []indexKey{
		{bucketRequestsPending, timeIDKey(r.CreatedAt, r.ID)},
		{bucketDue, dueKey(r.Deadline, dueKindRequest, r.ID)},
	}
}

// PutDecision writes d.
func (t *writeTx) PutDecision(d *broker.Decision) error {
	if d == nil {
		return broker.Errorf(broker.EINVALID, "no decision to write")
	}
	_, err := t.put(bucketDecisions, "decision", d.ID, d)
	return err
}

// PutGrant writes g and moves its index keys to match its state.
func (t *writeTx) PutGrant(g *broker.Grant) error {
	if g == nil {
		return broker.Errorf(broker.EINVALID, "no grant to write")
	}
	if strings.IndexByte(g.AgentID, 0) >= 0 {
		// Refused as the bbolt store refuses it.
		return broker.Errorf(broker.EINVALID, "grant %q: agent id contains a NUL byte", g.ID)
	}
	data, err := t.put(bucketGrants, "grant", g.ID, g)
	if err != nil {
		return err
	}
	var prev *broker.Grant
	if data != nil {
		prev = new(broker.Grant)
		if err := decode("grant", g.ID, data, prev); err != nil {
			return err
		}
	}
	return t.reindex(grantIndex(prev), grantIndex(g))
}

// grantIndex lists the index keys a grant holds in its state.
func grantIndex(g *broker.Grant) []indexKey {
	if g == nil {
		return nil
	}
	keys := []indexKey{{bucketGrantsByCreated, timeIDKey(g.CreatedAt, g.ID)}}
	if g.State == broker.GrantActive {
		keys = append(keys,
			indexKey{bucketGrantsActive, timeIDKey(g.CreatedAt, g.ID)},
			indexKey{bucketDue, dueKey(g.ExpiresAt, dueKindGrant, g.ID)})
	}
	return keys
}

// PutToken writes k.
func (t *writeTx) PutToken(k *broker.Token) error {
	if k == nil {
		return broker.Errorf(broker.EINVALID, "no token to write")
	}
	_, err := t.put(bucketTokens, "token", k.JTI, k)
	return err
}

// PutRevocation writes r.
func (t *writeTx) PutRevocation(r *broker.Revocation) error {
	if r == nil {
		return broker.Errorf(broker.EINVALID, "no revocation to write")
	}
	_, err := t.put(bucketRevocations, "revocation", r.ID, r)
	return err
}

// AppendAudit gives e the next Seq, chains it after the newest entry
// (Seal) and writes it. e is changed in place (Seq, Prev, Hash, Body).
func (t *writeTx) AppendAudit(e *broker.AuditEntry) error {
	if e == nil {
		return broker.Errorf(broker.EINVALID, "no audit entry to write")
	}
	if err := t.live(); err != nil {
		return err
	}
	prev := ""
	e.Seq = uint64(len(t.s.audit)) + 1
	if e.Seq > 1 {
		last, err := decodeAudit(e.Seq-1, t.s.audit[e.Seq-2])
		if err != nil {
			return err
		}
		prev = last.Hash
	}
	if err := e.Seal(prev); err != nil {
		return err
	}
	data, err := json.Marshal(storedAudit{V: auditV1, Prev: e.Prev, Hash: e.Hash, Entry: e.Body})
	if err != nil {
		return fmt.Errorf("encode audit entry %d: %w", e.Seq, err)
	}
	t.s.audit = append(t.s.audit, data)
	return nil
}

// AppendSignal gives s the next Seq and writes it to the feed.
func (t *writeTx) AppendSignal(s *broker.Signal) error {
	if s == nil {
		return broker.Errorf(broker.EINVALID, "no signal to write")
	}
	if err := t.live(); err != nil {
		return err
	}
	s.Seq = uint64(len(t.s.signals)) + 1
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode signal %d: %w", s.Seq, err)
	}
	t.s.signals = append(t.s.signals, data)
	return nil
}

// PutSigningKey writes a signing key, replacing one with the same kid.
func (t *writeTx) PutSigningKey(k broker.SigningKey) error {
	_, err := t.put(bucketSigningKeys, "signing key", k.ID, k)
	return err
}

// DeleteSigningKey removes a signing key; removing one that is not there
// is not an error.
func (t *writeTx) DeleteSigningKey(kid string) error {
	b, err := t.writeBucket(bucketSigningKeys)
	if err != nil {
		return err
	}
	b.delete(kid)
	return nil
}

// PutRecord writes a copy of value as record id in namespace ns.
func (t *writeTx) PutRecord(ns, id string, value []byte) error {
	if err := checkID(ns+" record", id); err != nil {
		return err
	}
	if _, err := t.recordBucket(ns); err != nil {
		return err
	}
	b, err := t.writeBucket(recordBucket(ns))
	if err != nil {
		return err
	}
	b.put(id, append([]byte{}, value...)) // never nil: Record must find an empty value
	return nil
}

// DeleteRecord removes record id from namespace ns; removing one that is
// not there is not an error.
func (t *writeTx) DeleteRecord(ns, id string) error {
	if _, err := t.recordBucket(ns); err != nil {
		return err
	}
	b, err := t.writeBucket(recordBucket(ns))
	if err != nil {
		return err
	}
	b.delete(id)
	return nil
}
