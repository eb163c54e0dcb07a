package store

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// openDurable opens a store that fsyncs, as writ runs.
func openDurable(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "writ.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// issue is the store's share of approving a request: write the grant and
// its audit entry.
func issue(n uint64) func(broker.Tx) error {
	id := fmt.Sprintf("g%016x", n)
	created := t0.Add(time.Duration(n) * time.Millisecond)
	return func(tx broker.Tx) error {
		if err := tx.PutGrant(sampleGrant(id, fmt.Sprintf("agent-%d", n%64), broker.GrantActive, created)); err != nil {
			return err
		}
		return tx.AppendAudit(&broker.AuditEntry{At: created, Kind: broker.AuditTokenIssued, Actor: "agent:a", GrantID: id, JTI: "jti-" + id})
	}
}

// BenchmarkIssueUpdate commits each grant and audit entry durably, one
// transaction and one fsync at a time, as an operator action does.
func BenchmarkIssueUpdate(b *testing.B) {
	s := openDurable(b)
	var n uint64
	for b.Loop() {
		n++
		if err := s.Update(b.Context(), issue(n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueBatch commits the same writes from concurrent goroutines
// through Batch, sharing fsyncs (group commit), as the agent API does.
func BenchmarkIssueBatch(b *testing.B) {
	for _, par := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", par*2), func(b *testing.B) {
			s := openDurable(b)
			var n atomic.Uint64
			b.SetParallelism(par) // × GOMAXPROCS
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Batch(b.Context(), issue(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGrantView looks grants up by id among 100,000, concurrently,
// as introspection does.
func BenchmarkGrantView(b *testing.B) {
	s := MustOpen(b)
	const grants = 100_000
	for start := uint64(0); start < grants; start += 10_000 {
		err := s.Update(b.Context(), func(tx broker.Tx) error {
			for n := start; n < start+10_000; n++ {
				if err := issue(n)(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("g%016x", n.Add(7919)%grants)
			err := s.View(b.Context(), func(tx broker.TxReader) error {
				_, err := tx.Grant(id)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
