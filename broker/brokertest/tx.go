package brokertest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker"
)

// readTx implements broker.TxReader over one version of the state. In a
// write transaction s is the transaction's own fork, so reads see the
// transaction's writes.
type readTx struct {
	s     *state
	ended atomic.Bool
}

var _ broker.TxReader = (*readTx)(nil)

// live refuses a transaction used after its fn returned.
func (t *readTx) live() error {
	if t.ended.Load() {
		return ErrTxClosed
	}
	return nil
}

// bucket returns the named bucket as it is now in this transaction.
func (t *readTx) bucket(name string) (*bucket, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	b := t.s.buckets[name]
	if b == nil {
		return nil, fmt.Errorf("brokertest: bucket %s is missing", name)
	}
	return b, nil
}

// get decodes record id of bucket name into v, or returns ENOTFOUND.
func (t *readTx) get(name, what, id string, v any) error {
	b, err := t.bucket(name)
	if err != nil {
		return err
	}
	data, ok := b.get(id)
	if !ok {
		return broker.Errorf(broker.ENOTFOUND, "%s %q not found", what, id)
	}
	return decode(what, id, data, v)
}

func decode(what, key string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s %q: %w", what, key, err)
	}
	return nil
}

// scan visits the keys of bucket name in order from seek, until fn
// returns false or an error. As in the bbolt store, it finds its place
// again after each call, from the bucket as it is then: keys fn deletes
// are not visited, and keys fn adds after the current one are.
func (t *readTx) scan(name, seek string, fn func(k string, v []byte) (bool, error)) error {
	k, after := seek, false
	for {
		b, err := t.bucket(name)
		if err != nil {
			return err
		}
		next, ok := b.seek(k, after)
		if !ok {
			return nil
		}
		v, _ := b.get(next)
		more, err := fn(next, v)
		if err != nil || !more {
			return err
		}
		k, after = next, true
	}
}

// forEachIndexed visits the ids named by the keys of an index bucket.
func (t *readTx) forEachIndexed(index string, fn func(id string) error) error {
	return t.scan(index, "", func(k string, _ []byte) (bool, error) {
		id, err := idFromTimeIDKey(k)
		if err != nil {
			return false, fmt.Errorf("index %s: %w", index, err)
		}
		return true, fn(id)
	})
}

// indexed turns ENOTFOUND for a record an index names into corruption.
func indexed(index, id string, err error) error {
	if broker.ErrorCode(err) == broker.ENOTFOUND {
		return fmt.Errorf("brokertest: index %s names %q, which does not exist", index, id)
	}
	return err
}

// Issuer returns the issuer state, the zero value on a new store.
func (t *readTx) Issuer() (broker.IssuerState, error) {
	var s broker.IssuerState
	err := t.get(bucketIssuer, "issuer state", keyIssuerState, &s)
	if broker.ErrorCode(err) == broker.ENOTFOUND {
		return broker.IssuerState{}, nil
	}
	return s, err
}

// AgentState returns the agent's state, the zero value with ID set for an
// agent never seen.
func (t *readTx) AgentState(id string) (broker.AgentState, error) {
	s := broker.AgentState{ID: id}
	err := t.get(bucketAgents, "agent state", id, &s)
	switch {
	case broker.ErrorCode(err) == broker.ENOTFOUND:
		return broker.AgentState{ID: id}, nil
	case err != nil:
		return broker.AgentState{ID: id}, err
	}
	return s, nil
}

// ForEachAgentState visits the state of every agent seen, by id.
func (t *readTx) ForEachAgentState(fn func(broker.AgentState) error) error {
	return t.scan(bucketAgents, "", func(k string, v []byte) (bool, error) {
		var s broker.AgentState
		if err := decode("agent state", k, v, &s); err != nil {
			return false, err
		}
		return true, fn(s)
	})
}

// Request returns the request with the given id.
func (t *readTx) Request(id string) (*broker.TaskRequest, error) {
	r := new(broker.TaskRequest)
	if err := t.get(bucketRequests, "request", id, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ForEachPending visits pending requests, oldest first.
func (t *readTx) ForEachPending(fn func(*broker.TaskRequest) error) error {
	return t.forEachIndexed(bucketRequestsPending, func(id string) error {
		r, err := t.Request(id)
		if err != nil {
			return indexed(bucketRequestsPending, id, err)
		}
		return fn(r)
	})
}

// Decision returns the decision with the given id.
func (t *readTx) Decision(id string) (*broker.Decision, error) {
	d := new(broker.Decision)
	if err := t.get(bucketDecisions, "decision", id, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Grant returns the grant with the given id.
func (t *readTx) Grant(id string) (*broker.Grant, error) {
	g := new(broker.Grant)
	if err := t.get(bucketGrants, "grant", id, g); err != nil {
		return nil, err
	}
	return g, nil
}

// ForEachActiveGrant visits active grants, oldest first.
func (t *readTx) ForEachActiveGrant(fn func(*broker.Grant) error) error {
	return t.forEachGrantIn(bucketGrantsActive, fn)
}

// ForEachGrant visits every grant, oldest first.
func (t *readTx) ForEachGrant(fn func(*broker.Grant) error) error {
	return t.forEachGrantIn(bucketGrantsByCreated, fn)
}

func (t *readTx) forEachGrantIn(index string, fn func(*broker.Grant) error) error {
	return t.forEachIndexed(index, func(id string) error {
		g, err := t.Grant(id)
		if err != nil {
			return indexed(index, id, err)
		}
		return fn(g)
	})
}

// Token returns the record of the token with the given jti.
func (t *readTx) Token(jti string) (*broker.Token, error) {
	k := new(broker.Token)
	if err := t.get(bucketTokens, "token", jti, k); err != nil {
		return nil, err
	}
	return k, nil
}

// ForEachDue visits expiry index entries with At ≤ before, earliest
// first (then grants before requests, then by id). fn may Put the record
// an entry names: an entry fn removes is not visited, and one it moves to
// a later time still ≤ before is visited again there.
func (t *readTx) ForEachDue(before time.Time, fn func(broker.Due) error) error {
	limit := timeKey(before)
	return t.scan(bucketDue, "", func(k string, _ []byte) (bool, error) {
		if len(k) < timeKeyLen || k[:timeKeyLen] > limit {
			return false, nil
		}
		d, err := decodeDue(k)
		if err != nil {
			return false, fmt.Errorf("brokertest: %w", err)
		}
		return true, fn(d)
	})
}

// ForEachAudit visits entries with Seq ≥ from, in order. Entries fn
// appends are not visited.
func (t *readTx) ForEachAudit(from uint64, fn func(*broker.AuditEntry) error) error {
	if err := t.live(); err != nil {
		return err
	}
	end := uint64(len(t.s.audit))
	for seq := max(from, 1); seq <= end; seq++ {
		e, err := decodeAudit(seq, t.s.audit[seq-1])
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		if err := t.live(); err != nil {
			return err
		}
	}
	return nil
}

// ForEachAuditReverse visits entries with Seq ≤ from (0: from the
// newest), newest first.
func (t *readTx) ForEachAuditReverse(from uint64, fn func(*broker.AuditEntry) error) error {
	if err := t.live(); err != nil {
		return err
	}
	seq := uint64(len(t.s.audit))
	if from != 0 && from < seq {
		seq = from
	}
	for ; seq >= 1; seq-- {
		e, err := decodeAudit(seq, t.s.audit[seq-1])
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// storedAudit is an audit entry as the bbolt store keeps it from version 1
// on: the entry's own bytes, exactly as hashed, beside the chain links.
type storedAudit struct {
	V     int             `json:"v"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Entry json.RawMessage `json:"entry"`
}

const auditV1 = 1

func decodeAudit(seq uint64, v []byte) (*broker.AuditEntry, error) {
	var st storedAudit
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, &broker.ChainError{Seq: seq, Reason: "is not valid JSON: " + err.Error()}
	}
	e := new(broker.AuditEntry)
	if err := json.Unmarshal(st.Entry, e); err != nil {
		return nil, &broker.ChainError{Seq: seq, Reason: "is not a valid entry: " + err.Error()}
	}
	e.Prev, e.Hash, e.Body = st.Prev, st.Hash, st.Entry
	if e.Seq != seq {
		return nil, &broker.ChainError{Seq: seq, Reason: fmt.Sprintf("is stored at %d but says it is %d", seq, e.Seq)}
	}
	return e, nil
}

// Signals returns up to limit signals with Seq > after, in order; none
// when limit ≤ 0.
func (t *readTx) Signals(after uint64, limit int) ([]broker.Signal, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	out := []broker.Signal{}
	for seq := after + 1; seq > after && seq <= uint64(len(t.s.signals)) && len(out) < limit; seq++ {
		var s broker.Signal
		if err := decode("signal", fmt.Sprint(seq), t.s.signals[seq-1], &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// LastSignalSeq returns the newest signal's Seq, 0 if none.
func (t *readTx) LastSignalSeq() (uint64, error) {
	if err := t.live(); err != nil {
		return 0, err
	}
	return uint64(len(t.s.signals)), nil
}

// SigningKeys returns every signing key, oldest first.
func (t *readTx) SigningKeys() ([]broker.SigningKey, error) {
	var keys []broker.SigningKey
	err := t.scan(bucketSigningKeys, "", func(k string, v []byte) (bool, error) {
		var key broker.SigningKey
		if err := decode("signing key", k, v, &key); err != nil {
			return false, err
		}
		keys = append(keys, key)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b broker.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// recordBucket returns the bucket of namespace ns; an unknown namespace
// is EINVALID.
func (t *readTx) recordBucket(ns string) (*bucket, error) {
	if err := t.live(); err != nil {
		return nil, err
	}
	b := t.s.buckets[recordBucket(ns)]
	if b == nil {
		return nil, broker.Errorf(broker.EINVALID, "unknown record namespace %q", ns)
	}
	return b, nil
}

// Record returns a copy of the value of record id in namespace ns.
func (t *readTx) Record(ns, id string) ([]byte, error) {
	b, err := t.recordBucket(ns)
	if err != nil {
		return nil, err
	}
	v, ok := b.get(id)
	if !ok {
		return nil, broker.Errorf(broker.ENOTFOUND, "%s record %q not found", ns, id)
	}
	return bytes.Clone(v), nil
}

// ForEachRecord visits the records of namespace ns by id, with copies of
// their values. fn may write or delete records of ns.
func (t *readTx) ForEachRecord(ns string, fn func(id string, value []byte) error) error {
	if _, err := t.recordBucket(ns); err != nil {
		return err
	}
	return t.scan(recordBucket(ns), "", func(k string, v []byte) (bool, error) {
		return true, fn(k, bytes.Clone(v))
	})
}

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
