package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/writhq/writ/broker"
)

// ForEachDue visits expiry index entries with At ≤ before, earliest first.
// fn may Put the record an entry names: scan re-seeks after each call, so
// an entry fn removes is not visited, and one it moves to a later time
// still ≤ before is visited again at that time.
func (t *tx) ForEachDue(before time.Time, fn func(broker.Due) error) error {
	b, err := t.bucket(bucketDue)
	if err != nil {
		return err
	}
	var limit [timeKeyLen]byte
	putTimeKey(limit[:], before)
	return t.scan(b, nil, func(k, _ []byte) (bool, error) {
		if len(k) < timeKeyLen || bytes.Compare(k[:timeKeyLen], limit[:]) > 0 {
			return false, nil
		}
		d, err := decodeDue(k)
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		return true, fn(d)
	})
}
