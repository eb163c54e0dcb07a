package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// recordBucket returns the nested bucket of namespace ns; an unknown
// namespace is EINVALID.
func (t *tx) recordBucket(ns string) (*bolt.Bucket, error) {
	records, err := t.bucket(bucketRecords)
	if err != nil {
		return nil, err
	}
	b := records.Bucket([]byte(ns))
	if b == nil {
		return nil, broker.Errorf(broker.EINVALID, "unknown record namespace %q", ns)
	}
	return b, nil
}

// Record returns a copy of the value of record id in namespace ns.
func (t *tx) Record(ns, id string) ([]byte, error) {
	b, err := t.recordBucket(ns)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, broker.Errorf(broker.ENOTFOUND, "%s record %q not found", ns, id)
	}
	return decodeRecord(ns, id, v)
}

// PutRecord writes record id in namespace ns.
func (t *tx) PutRecord(ns, id string, value []byte) error {
	if err := checkID(ns+" record", id); err != nil {
		return err
	}
	b, err := t.recordBucket(ns)
	if err != nil {
		return err
	}
	if !t.tx.Writable() {
		return ErrReadOnlyTx
	}
	if err := b.Put([]byte(id), encodeRecord(value)); err != nil {
		return fmt.Errorf("write %s record %q: %w", ns, id, err)
	}
	return nil
}

// DeleteRecord removes record id from namespace ns; removing one that is
// not there is not an error.
func (t *tx) DeleteRecord(ns, id string) error {
	b, err := t.recordBucket(ns)
	if err != nil {
		return err
	}
	if !t.tx.Writable() {
		return ErrReadOnlyTx
	}
	if id == "" {
		return nil
	}
	if err := b.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete %s record %q: %w", ns, id, err)
	}
	return nil
}

// ForEachRecord visits the records of namespace ns by id, with copies of
// their values. fn may write or delete records of ns.
func (t *tx) ForEachRecord(ns string, fn func(id string, value []byte) error) error {
	b, err := t.recordBucket(ns)
	if err != nil {
		return err
	}
	return t.scan(b, nil, func(k, v []byte) (bool, error) {
		id := string(k)
		value, err := decodeRecord(ns, id, v)
		if err != nil {
			return false, err
		}
		return true, fn(id, value)
	})
}
