package brokertest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
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
