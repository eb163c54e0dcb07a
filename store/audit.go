package store

import (
	"bytes"
	"encoding/binary"
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
	last, prev, err := lastAudit(b)
	if err != nil {
		return err
	}
	e.Seq = last + 1
	if err := e.Seal(prev); err != nil {
		return err
	}
	if err := b.Put(seqKey(e.Seq), encodeAudit(e.Prev, e.Hash, e.Body)); err != nil {
		return fmt.Errorf("write audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// An audit entry is stored as the entry's own bytes, exactly as hashed
// (broker.AuditEntry.Seal: its JSON, the broker's format), beside the
// chain links. Its versions:
//
//	0  the entry's JSON itself, with prev and hash in it
//	1  storedAudit, JSON: {"v":1,"prev":…,"hash":…,"entry":<the entry's bytes>}
//	2  storedMarker ‖ uvarint(2) ‖ 'e' ‖ string(prev) ‖ string(hash) ‖ the
//	   entry's bytes, to the end of the value (legible in a hex dump)
//
// Version 2 is written; all three are read, and a chain runs across them.
type storedAudit struct {
	V     int             `json:"v"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Entry json.RawMessage `json:"entry"`
}

const (
	auditV1 = 1
	auditV2 = 2
	// auditTag is the kind tag of a version-2 entry.
	auditTag = 'e'
)

// encodeAudit returns an entry as stored in version 2.
func encodeAudit(prev, hash string, body []byte) []byte {
	out := make([]byte, 0, 3+2*binary.MaxVarintLen16+len(prev)+len(hash)+len(body))
	out = append(out, storedMarker, auditV2, auditTag)
	e := encoder{b: out}
	e.string(prev)
	e.string(hash)
	return append(e.b, body...)
}

// auditLinks reads the chain links of a version-2 entry and returns its
// body, or why the value is not such an entry.
func auditLinks(v []byte) (prev, hash string, body []byte, reason string) {
	if len(v) == 0 || v[0] != storedMarker {
		return "", "", nil, "is not a stored entry (altered)"
	}
	version, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return "", "", nil, "has a malformed format version (altered)"
	}
	at := 1 + n
	switch {
	case at < len(v) && v[at] != auditTag && kindOfTag(v[at]) != "":
		return "", "", nil, "holds a stored " + kindOfTag(v[at]) + " instead of an entry (altered)"
	case version != auditV2:
		return "", "", nil, fmt.Sprintf("has format version %d, which this writ does not know (written by a newer writ? upgrade writ)", version)
	case at >= len(v):
		return "", "", nil, "holds nothing instead of an entry (altered)"
	case v[at] != auditTag:
		return "", "", nil, fmt.Sprintf("holds tag %q instead of an entry (altered)", v[at])
	}
	at++
	var ok bool
	if prev, at, ok = auditLink(v, at); !ok {
		return "", "", nil, "has a broken previous-hash link (altered)"
	}
	if hash, at, ok = auditLink(v, at); !ok {
		return "", "", nil, "has a broken hash (altered)"
	}
	return prev, hash, v[at:], ""
}

// auditLink reads the string field at v[at:] and returns it and where the
// next field starts.
func auditLink(v []byte, at int) (string, int, bool) {
	n, w := binary.Uvarint(v[at:])
	if w <= 0 || n > uint64(len(v)-at-w) {
		return "", 0, false
	}
	at += w
	return string(v[at : at+int(n)]), at + int(n), true
}

// lastAudit returns the newest entry's seq and hash, what the next entry
// chains to, or seq 0 for an empty log. For a version-2 entry it reads
// only the links: its content is the verifier's to judge, and appending
// after an altered entry hides nothing (the chain still breaks there).
func lastAudit(b *bolt.Bucket) (seq uint64, hash string, err error) {
	k, v := b.Cursor().Last()
	if k == nil {
		return 0, "", nil
	}
	if len(v) > 0 && v[0] == storedMarker {
		if seq, err = seqFromKey(k); err != nil {
			return 0, "", fmt.Errorf("store: audit: %w", err)
		}
		_, hash, _, reason := auditLinks(v)
		if reason != "" {
			return 0, "", &broker.ChainError{Seq: seq, Reason: reason}
		}
		return seq, hash, nil
	}
	e, err := decodeAudit(k, v)
	if err != nil {
		return 0, "", err
	}
	return e.Seq, e.Hash, nil
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
	if len(v) > 0 && v[0] == storedMarker {
		prev, hash, body, reason := auditLinks(v)
		if reason != "" {
			return nil, &broker.ChainError{Seq: seq, Reason: reason}
		}
		if err := json.Unmarshal(body, e); err != nil {
			return nil, &broker.ChainError{Seq: seq, Reason: "is not a valid entry (altered): " + err.Error()}
		}
		// body is bbolt's memory: the entry keeps its own copy.
		e.Prev, e.Hash, e.Body = prev, hash, bytes.Clone(body)
		return checkAuditSeq(seq, e)
	}
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
	return checkAuditSeq(seq, e)
}

// checkAuditSeq refuses an entry stored under another seq than its own.
func checkAuditSeq(seq uint64, e *broker.AuditEntry) (*broker.AuditEntry, error) {
	if e.Seq != seq {
		return nil, &broker.ChainError{Seq: seq, Reason: fmt.Sprintf("is stored under key %d but says it is %d (moved)", seq, e.Seq)}
	}
	return e, nil
}
