package store

import (
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// dueFixture writes requests and grants whose expiry entries interleave.
func dueFixture(tb testing.TB, s *Store) {
	tb.Helper()
	update(tb, s, func(tx broker.Tx) error {
		for _, r := range []*broker.TaskRequest{
			{ID: "r-late", State: broker.RequestPending, CreatedAt: t0, Deadline: at(30 * time.Minute)},
			{ID: "r-early", State: broker.RequestPending, CreatedAt: t0, Deadline: at(1 * time.Minute)},
			{ID: "r-done", State: broker.RequestApproved, CreatedAt: t0, Deadline: at(0)},
		} {
			if err := tx.PutRequest(r); err != nil {
				return err
			}
		}
		for _, g := range []*broker.Grant{
			{ID: "g-mid", AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: at(10 * time.Minute)},
			{ID: "g-first", AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: at(-time.Minute)},
			{ID: "g-ended", AgentID: "a", State: broker.GrantCompleted, CreatedAt: t0, ExpiresAt: at(0)},
		} {
			if err := tx.PutGrant(g); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestNothingDueOnEmpty(t *testing.T) {
	s := MustOpen(t)
	view(t, s, func(tx broker.TxReader) error {
		if d, ok, err := firstDue(tx); ok || err != nil {
			t.Errorf("first due on an empty store = %+v, %v, %v", d, ok, err)
		}
		return nil
	})
}

// firstDue is the earliest entry of the expiry index, if any.
func firstDue(tx broker.TxReader) (broker.Due, bool, error) {
	var first broker.Due
	found := false
	err := tx.ForEachDue(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), func(d broker.Due) error {
		first, found = d, true
		return errDone
	})
	if err == errDone {
		err = nil
	}
	return first, found, err
}

func TestZeroDeadlineIsDueFirst(t *testing.T) {
	s := MustOpen(t)
	dueFixture(t, s)
	update(t, s, func(tx broker.Tx) error {
		return tx.PutRequest(&broker.TaskRequest{ID: "r-zero", State: broker.RequestPending, CreatedAt: t0})
	})
	view(t, s, func(tx broker.TxReader) error {
		d, ok, err := firstDue(tx)
		if err != nil || !ok || d.ID != "r-zero" || !d.At.IsZero() {
			t.Errorf("first due = %+v, %v, %v; want r-zero at the zero time", d, ok, err)
		}
		return nil
	})
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		t0,
		t0.Add(time.Nanosecond),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := tk(times[i-1]), tk(times[i])
		if a > b {
			t.Errorf("key of %v sorts after key of %v", times[i-1], times[i])
		}
	}
	for _, tm := range []time.Time{t0, time.Unix(0, 0), time.Date(1969, 12, 31, 23, 59, 59, 5, time.UTC), {}} {
		if got := timeFromKey([]byte(tk(tm))); !got.Equal(tm) {
			t.Errorf("timeFromKey(timeKey(%v)) = %v", tm, got)
		}
	}
}
