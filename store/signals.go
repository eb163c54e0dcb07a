package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// AppendSignal gives s the next Seq and writes it to the feed. The bucket's
// sequence remembers the last Seq, so pruning old signals never reuses one.
func (t *tx) AppendSignal(s *broker.Signal) error {
	if s == nil {
		return broker.Errorf(broker.EINVALID, "no signal to write")
	}
	b, err := t.writeBucket(bucketSignals)
	if err != nil {
		return err
	}
	b.FillPercent = appendFill
	last, err := lastSignalSeq(b)
	if err != nil {
		return err
	}
	s.Seq = last + 1
	if err := b.SetSequence(s.Seq); err != nil {
		return fmt.Errorf("write signal sequence: %w", err)
	}
	data, err := encodeSignal(s)
	if err != nil {
		return err
	}
	if err := b.Put(seqKey(s.Seq), data); err != nil {
		return fmt.Errorf("write signal %d: %w", s.Seq, err)
	}
	return nil
}

// Signals returns up to limit signals with Seq > after, in order; none when
// limit ≤ 0 (as SSF poll's maxEvents of 0).
func (t *tx) Signals(after uint64, limit int) ([]broker.Signal, error) {
	b, err := t.bucket(bucketSignals)
	if err != nil {
		return nil, err
	}
	out := []broker.Signal{}
	if limit <= 0 || after == ^uint64(0) {
		return out, nil
	}
	err = t.scan(b, seqKey(after+1), func(k, v []byte) (bool, error) {
		seq, err := seqFromKey(k)
		if err != nil {
			return false, fmt.Errorf("store: signals: %w", err)
		}
		s, err := decodeSignal(seq, v)
		if err != nil {
			return false, err
		}
		out = append(out, *s)
		return len(out) < limit, nil
	})
	return out, err
}

// LastSignalSeq returns the newest signal's Seq, 0 if none.
func (t *tx) LastSignalSeq() (uint64, error) {
	b, err := t.bucket(bucketSignals)
	if err != nil {
		return 0, err
	}
	return lastSignalSeq(b)
}

// lastSignalSeq is the larger of the newest key and the bucket sequence.
func lastSignalSeq(b *bolt.Bucket) (uint64, error) {
	last := b.Sequence()
	if k, _ := b.Cursor().Last(); k != nil {
		seq, err := seqFromKey(k)
		if err != nil {
			return 0, fmt.Errorf("store: signals: %w", err)
		}
		last = max(last, seq)
	}
	return last, nil
}
