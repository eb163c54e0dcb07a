package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// AppendAudit gives e the next Seq, chains it after the newest entry and
// writes it. e is changed in place (Seq, Prev, Hash).
func (t *tx) AppendAudit(e *broker.AuditEntry) error {
	if e == nil {
		return broker.Errorf(broker.EINVALID, "no audit entry to write")
	}
	b, err := t.writeBucket(bucketAudit)
	if err != nil {
		return err
	}
	b.FillPercent = appendFill
	lastSeq, prev, err := t.lastAuditLink(b)
	if err != nil {
		return err
	}
	e.Seq = lastSeq + 1
	if err := e.Seal(prev); err != nil {
		return err
	}
	if err := putJSON(b, "audit entry", seqKey(e.Seq), storedAudit{V: auditV1, Prev: e.Prev, Hash: e.Hash, Entry: e.Body}); err != nil {
		return err
	}
	t.noteAuditLink(e.Seq, e.Hash)
	return nil
}

// storedAudit is an audit entry as stored from version 1 on: the entry's
// own bytes, exactly as hashed, beside the chain links. An entry stored
// before (version 0) is the entry's JSON itself, with prev and hash in it.
type storedAudit struct {
	V     int             `json:"v"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Entry json.RawMessage `json:"entry"`
}

const auditV1 = 1

func lastAudit(b *bolt.Bucket) (*broker.AuditEntry, error) {
	k, v := b.Cursor().Last()
	if k == nil {
		return nil, nil
	}
	return decodeAudit(k, v)
}

// ForEachAudit visits entries with Seq ≥ from, in order. Entries fn
// appends are not visited, so appending from fn cannot loop forever.
func (t *tx) ForEachAudit(from uint64, fn func(*broker.AuditEntry) error) error {
	b, err := t.bucket(bucketAudit)
	if err != nil {
		return err
	}
	end, _ := b.Cursor().Last()
	if end == nil {
		return nil
	}
	end = bytes.Clone(end)
	return t.scan(b, seqKey(from), func(k, v []byte) (bool, error) {
		if bytes.Compare(k, end) > 0 {
			return false, nil
		}
		e, err := decodeAudit(k, v)
		if err != nil {
			return false, err
		}
		return true, fn(e)
	})
}

// ForEachAuditReverse visits entries with Seq ≤ from (0: from the newest),
// newest first.
func (t *tx) ForEachAuditReverse(from uint64, fn func(*broker.AuditEntry) error) error {
	b, err := t.bucket(bucketAudit)
	if err != nil {
		return err
	}
	c := b.Cursor()
	var k, v []byte
	if from == 0 {
		k, v = c.Last()
	} else {
		k, v = c.Seek(seqKey(from))
		switch {
		case k == nil:
			k, v = c.Last()
		case !bytes.Equal(k, seqKey(from)):
			k, v = c.Prev()
		}
	}
	// The log is append-only, so unlike scan this needs no re-seek: fn may
	// append, which only adds keys after the ones left to visit.
	for ; k != nil; k, v = c.Prev() {
		e, err := decodeAudit(k, v)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// decodeAudit reads one stored entry. A value that is not an entry, or not
// the entry its key says, is a broken chain (*broker.ChainError): the log
// was altered, whichever walk finds it.
func decodeAudit(k, v []byte) (*broker.AuditEntry, error) {
	seq, err := seqFromKey(k)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	e := new(broker.AuditEntry)
	var st storedAudit
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, &broker.ChainError{Seq: seq, Reason: "is not valid JSON (altered): " + err.Error()}
	}
	switch st.V {
	case 0: // the entry's own JSON
		if err := json.Unmarshal(v, e); err != nil {
			return nil, &broker.ChainError{Seq: seq, Reason: "is not valid JSON (altered): " + err.Error()}
		}
	case auditV1:
		if err := json.Unmarshal(st.Entry, e); err != nil {
			return nil, &broker.ChainError{Seq: seq, Reason: "is not a valid entry (altered): " + err.Error()}
		}
		e.Prev, e.Hash, e.Body = st.Prev, st.Hash, st.Entry
	default:
		return nil, &broker.ChainError{Seq: seq, Reason: fmt.Sprintf("has format version %d, which this writ does not know", st.V)}
	}
	if e.Seq != seq {
		return nil, &broker.ChainError{Seq: seq, Reason: fmt.Sprintf("is stored under key %d but says it is %d (moved)", seq, e.Seq)}
	}
	return e, nil
}
