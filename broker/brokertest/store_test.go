package brokertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

func TestConformance(t *testing.T) {
	brokertest.RunConformance(t, func(testing.TB) broker.Store { return brokertest.NewStore() })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func putGrant(id string) func(broker.Tx) error {
	return func(tx broker.Tx) error {
		return tx.PutGrant(&broker.Grant{ID: id, AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	}
}

func activeGrants(tx broker.TxReader) (n int, err error) {
	err = tx.ForEachActiveGrant(func(*broker.Grant) error { n++; return nil })
	return n, err
}

// TestViewIsASnapshot: a View keeps the version that was current when it
// began, even when a write commits while it runs.
func TestViewIsASnapshot(t *testing.T) {
	s := brokertest.NewStore()
	ctx := t.Context()
	if err := s.Update(ctx, putGrant("g1")); err != nil {
		t.Fatal(err)
	}
	err := s.View(ctx, func(tx broker.TxReader) error {
		if err := s.Update(ctx, putGrant("g2")); err != nil {
			return err
		}
		if _, err := tx.Grant("g2"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("a View sees a grant committed after it began: %v", err)
		}
		if n, err := activeGrants(tx); n != 1 || err != nil {
			t.Errorf("active grants in the View = %d, %v; want the 1 it began with", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx broker.TxReader) error {
		n, err := activeGrants(tx)
		if n != 2 {
			t.Errorf("active grants after the commit = %d, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestViewNeverWaitsForAWriter: a View runs, and sees none of its writes,
// while a write transaction is open on another goroutine.
func TestViewNeverWaitsForAWriter(t *testing.T) {
	s := brokertest.NewStore()
	ctx := t.Context()
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx broker.Tx) error {
			if err := putGrant("g1")(tx); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	err := s.View(ctx, func(tx broker.TxReader) error {
		if _, err := tx.Grant("g1"); broker.ErrorCode(err) != broker.ENOTFOUND {
			t.Errorf("a View sees an uncommitted write: %v", err)
		}
		return nil
	})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	s := brokertest.NewStore()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ran := false
	for name, err := range map[string]error{
		"View":   s.View(ctx, func(broker.TxReader) error { ran = true; return nil }),
		"Update": s.Update(ctx, func(broker.Tx) error { ran = true; return nil }),
		"Batch":  s.Batch(ctx, func(broker.Tx) error { ran = true; return nil }),
	} {
		if !errors.Is(err, brokertest.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
	if ran {
		t.Error("fn ran on a closed store")
	}
}
