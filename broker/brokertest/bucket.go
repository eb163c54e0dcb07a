package brokertest

import (
	"maps"
	"slices"
)

// bucket is an ordered map of byte-string keys, as a bbolt bucket: keys
// compare bytewise, so the same big-endian keys scan in the same order.
// A bucket reachable from a published state is never changed.
type bucket struct {
	keys []string // sorted
	vals map[string][]byte
}

func newBucket() *bucket { return &bucket{vals: map[string][]byte{}} }

func (b *bucket) clone() *bucket {
	return &bucket{keys: slices.Clone(b.keys), vals: maps.Clone(b.vals)}
}

func (b *bucket) get(k string) ([]byte, bool) {
	v, ok := b.vals[k]
	return v, ok
}

// put stores v at k. v must not be changed afterwards.
func (b *bucket) put(k string, v []byte) {
	if _, ok := b.vals[k]; !ok {
		i, _ := slices.BinarySearch(b.keys, k)
		b.keys = slices.Insert(b.keys, i, k)
	}
	b.vals[k] = v
}

func (b *bucket) delete(k string) {
	if _, ok := b.vals[k]; !ok {
		return
	}
	i, _ := slices.BinarySearch(b.keys, k)
	b.keys = slices.Delete(b.keys, i, i+1)
	delete(b.vals, k)
}

// seek returns the first key ≥ k, or the first key > k when after is set.
func (b *bucket) seek(k string, after bool) (string, bool) {
	i, found := slices.BinarySearch(b.keys, k)
	if found && after {
		i++
	}
	if i >= len(b.keys) {
		return "", false
	}
	return b.keys[i], true
}
