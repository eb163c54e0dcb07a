package store

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// TestTimeKeyedBucketsFillTheirPages (issue 12): grants whose ids start with
// the time, written a few per commit as a group commit does, leave their
// bucket's leaf pages nearly full rather than half empty, so each commit
// writes about as many pages as its records need.
func TestTimeKeyedBucketsFillTheirPages(t *testing.T) {
	s := MustOpen(t)
	const commits, perCommit = 200, 10
	for c := range commits {
		err := s.Update(t.Context(), func(tx broker.Tx) error {
			for i := range perCommit {
				at := t0.Add(time.Duration(c*perCommit+i) * time.Millisecond)
				id := fmt.Sprintf("grant-%012x%016x", at.UnixMilli(), c*perCommit+i)
				g := &broker.Grant{ID: id, RequestID: "r" + id, AgentID: "a", State: broker.GrantActive, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
					Intent: "read the repository and open a pull request with the fix"}
				if err := tx.PutGrant(g); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.db.View(func(btx *bolt.Tx) error {
		st := btx.Bucket(bucketGrants).Stats()
		if st.LeafPageN < 10 {
			t.Fatalf("only %d leaf pages: too few to judge", st.LeafPageN)
		}
		if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.8 {
			t.Errorf("grant leaf pages are %.0f%% full (%d pages), want at least 80%%", 100*fill, st.LeafPageN)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnchangedRecordIsNotRewritten: writing a record exactly as stored
// dirties no page, so its commit writes only bbolt's own bookkeeping.
func TestUnchangedRecordIsNotRewritten(t *testing.T) {
	s := MustOpen(t)
	g := &broker.Grant{ID: "grant-1", RequestID: "r1", AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	pages := func(fn func(broker.Tx) error) int64 {
		t.Helper()
		st := s.db.Stats()
		before := st.TxStats.GetWrite()
		if err := s.Update(t.Context(), fn); err != nil {
			t.Fatal(err)
		}
		st = s.db.Stats()
		return st.TxStats.GetWrite() - before
	}
	pages(func(tx broker.Tx) error { return tx.PutGrant(g) })
	idle := pages(func(broker.Tx) error { return nil })
	if n := pages(func(tx broker.Tx) error { return tx.PutGrant(g) }); n != idle {
		t.Errorf("rewriting an unchanged grant wrote %d pages, an empty commit %d", n, idle)
	}
	g.Intent = "changed"
	if n := pages(func(tx broker.Tx) error { return tx.PutGrant(g) }); n <= idle {
		t.Errorf("a changed grant wrote %d pages, no more than an empty commit (%d)", n, idle)
	}
	view(t, s, func(tx broker.TxReader) error {
		got, err := tx.Grant("grant-1")
		if err != nil || got.Intent != "changed" {
			t.Errorf("grant after the change: %+v %v", got, err)
		}
		return nil
	})
}
