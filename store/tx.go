package store

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/writhq/writ/broker"
)

// ErrReadOnlyTx is returned by a write method called in a View transaction
// or on a store opened read-only.
var ErrReadOnlyTx = errors.New("store: write in a read-only transaction")

// maxIDLen bounds record ids, which become bbolt keys (at most 32 KiB).
const maxIDLen = 1024

// tx implements broker.Tx over one bbolt transaction.
type tx struct {
	tx *bolt.Tx
}

var _ broker.Tx = (*tx)(nil)

// bucket returns a top-level bucket. A missing bucket means the file was
// changed behind writ's back, since open creates them all.
func (t *tx) bucket(name []byte) (*bolt.Bucket, error) {
	if t.tx.DB() == nil {
		// bbolt panics on a closed transaction; a Tx kept past its fn is a bug.
		return nil, fmt.Errorf("store: transaction used after it ended: %w", berrors.ErrTxClosed)
	}
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("store: bucket %s is missing", name)
	}
	return b, nil
}

// writeBucket is bucket for write methods: it refuses a read-only tx.
func (t *tx) writeBucket(name []byte) (*bolt.Bucket, error) {
	b, err := t.bucket(name)
	if err != nil {
		return nil, err
	}
	if !t.tx.Writable() {
		return nil, ErrReadOnlyTx
	}
	if timeKeyed(name) {
		b.FillPercent = appendFill
	}
	return b, nil
}

// timeKeyed reports whether a bucket's new keys come in time order, so
// that pages split as they fill are not written again: the records every
// cycle writes, whose ids start with the time (broker's newTimedID and
// newSecretID), and the by-creation indexes. bbolt's default FillPercent
// (0.5) would leave every page they fill half empty, and write twice the
// pages.
func timeKeyed(name []byte) bool {
	for _, b := range [][]byte{bucketRequests, bucketDecisions, bucketGrants, bucketTokens, bucketGrantsByCreated} {
		if bytes.Equal(name, b) {
			return true
		}
	}
	return false
}

// checkID refuses ids bbolt cannot key on.
func checkID(what, id string) error {
	switch {
	case id == "":
		return broker.Errorf(broker.EINVALID, "%s has no id", what)
	case len(id) > maxIDLen:
		return broker.Errorf(broker.EINVALID, "%s id is longer than %d bytes", what, maxIDLen)
	}
	return nil
}

// scan visits the keys of b in order, from seek (the first key when nil),
// until fn returns false or an error. k and v are valid only during fn.
//
// In a writable transaction fn may change b (a Put that moves an index key):
// deleting under a live bbolt cursor skips keys, so scan re-seeks after each
// call. Keys deleted by fn are then not visited, and keys fn adds after the
// current one are.
func (t *tx) scan(b *bolt.Bucket, seek []byte, fn func(k, v []byte) (bool, error)) error {
	c := b.Cursor()
	var k, v []byte
	if seek == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(seek)
	}
	writable := t.tx.Writable()
	trim := newScanTrim(t.tx) // bounds the file a long scan maps (mmap_linux.go)
	for k != nil {
		trim.visit()
		var at []byte
		if writable {
			at = bytes.Clone(k)
		}
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
		if !writable {
			k, v = c.Next()
			continue
		}
		k, v = c.Seek(at)
		if k != nil && bytes.Equal(k, at) {
			k, v = c.Next()
		}
	}
	return nil
}

// indexKey is one key a record holds in one index bucket.
type indexKey struct {
	bucket []byte
	key    []byte
}

// reindex moves a record's index keys from old to new: keys only in old
// are deleted, keys only in new are written, shared keys are left alone.
func (t *tx) reindex(old, new []indexKey) error {
	has := func(keys []indexKey, x indexKey) bool {
		for _, k := range keys {
			if bytes.Equal(k.bucket, x.bucket) && bytes.Equal(k.key, x.key) {
				return true
			}
		}
		return false
	}
	for _, o := range old {
		if has(new, o) {
			continue
		}
		b, err := t.writeBucket(o.bucket)
		if err != nil {
			return err
		}
		if err := b.Delete(o.key); err != nil {
			return fmt.Errorf("delete %s index key %x: %w", o.bucket, o.key, err)
		}
	}
	for _, n := range new {
		if has(old, n) {
			continue
		}
		b, err := t.writeBucket(n.bucket)
		if err != nil {
			return err
		}
		if err := b.Put(n.key, []byte{}); err != nil {
			return fmt.Errorf("write %s index key %x: %w", n.bucket, n.key, err)
		}
	}
	return nil
}

// forEachIndexed visits, in index order, the ids named by the keys of
// bucket index that start with prefix. idOf extracts the id from a key.
func (t *tx) forEachIndexed(index, prefix []byte, idOf func([]byte) (string, error), fn func(id string) error) error {
	b, err := t.bucket(index)
	if err != nil {
		return err
	}
	var seek []byte
	if len(prefix) > 0 {
		seek = prefix
	}
	return t.scan(b, seek, func(k, _ []byte) (bool, error) {
		if !bytes.HasPrefix(k, prefix) {
			return false, nil
		}
		id, err := idOf(k[len(prefix):])
		if err != nil {
			return false, fmt.Errorf("index %s: %w", index, err)
		}
		return true, fn(id)
	})
}

// indexed wraps a getter for forEachIndexed: an index naming a missing
// record is corruption, not ENOTFOUND.
func indexed(index []byte, id string, err error) error {
	if broker.ErrorCode(err) == broker.ENOTFOUND {
		return fmt.Errorf("store: index %s names %q, which does not exist", index, id)
	}
	return err
}
