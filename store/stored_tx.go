package store

import (
	"bytes"
	"fmt"

	"github.com/writhq/writ/broker"
)

// storedValueOf returns the stored value of record id of kind k in bucket
// name, or ENOTFOUND. The value is bbolt's memory: decode it before the
// transaction ends or the bucket changes.
func (t *tx) storedValueOf(name []byte, k recordKind, id string) ([]byte, error) {
	b, err := t.bucket(name)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, broker.Errorf(broker.ENOTFOUND, "%s %q not found", k.name, id)
	}
	return v, nil
}

// putStored writes the stored value of record id of kind k. When prev is
// not nil it is called first with the value being replaced, if any, for
// index maintenance. A value equal to the one stored is not written again.
func (t *tx) putStored(name []byte, k recordKind, id string, data []byte, prev func([]byte) error) error {
	if err := checkID(k.name, id); err != nil {
		return err
	}
	b, err := t.writeBucket(name)
	if err != nil {
		return err
	}
	old := b.Get([]byte(id))
	if prev != nil && old != nil {
		if err := prev(old); err != nil {
			return err
		}
	}
	if old != nil && bytes.Equal(old, data) {
		// Unchanged (and so, with prev told, are its index keys): writing
		// it would only dirty its page for the commit.
		return nil
	}
	if err := b.Put([]byte(id), data); err != nil {
		return fmt.Errorf("write %s %q: %w", k.name, id, err)
	}
	return nil
}
