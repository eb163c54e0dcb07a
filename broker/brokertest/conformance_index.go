package brokertest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// indexView is what a store's indexes say, observed through the reader:
// the pending requests, the active grants, every grant, and the expiry
// index, each as ids in visiting order (due entries as kind:id@offset).
type indexView struct {
	Pending, Active, All, Due []string
}

func observeIndexes(tb testing.TB, s broker.Store) indexView {
	tb.Helper()
	var v indexView
	view(tb, s, func(tx broker.TxReader) error {
		if err := tx.ForEachPending(func(r *broker.TaskRequest) error { v.Pending = append(v.Pending, r.ID); return nil }); err != nil {
			return err
		}
		if err := tx.ForEachActiveGrant(func(g *broker.Grant) error { v.Active = append(v.Active, g.ID); return nil }); err != nil {
			return err
		}
		if err := tx.ForEachGrant(func(g *broker.Grant) error { v.All = append(v.All, g.ID); return nil }); err != nil {
			return err
		}
		return tx.ForEachDue(at(1e5*time.Hour), func(d broker.Due) error {
			v.Due = append(v.Due, string(d.Kind)+":"+d.ID+"@"+d.At.Sub(t0).String())
			return nil
		})
	})
	return v
}

func (c *conformance) requestIndexes(t *testing.T) {
	created, deadline := t0, at(5*time.Minute)
	pending := indexView{Pending: []string{"r1"}, Due: []string{"request:r1@5m0s"}}
	closed := indexView{} // a closed request is in no index
	cases := []struct {
		name   string
		change func(*broker.TaskRequest)
		want   indexView
	}{
		{"submitted", func(*broker.TaskRequest) {}, pending},
		{"polled", func(r *broker.TaskRequest) { r.LastPoll = at(time.Second) }, pending},
		{"deadline moved", func(r *broker.TaskRequest) { r.Deadline = at(time.Hour) }, indexView{
			Pending: []string{"r1"}, Due: []string{"request:r1@1h0m0s"},
		}},
		{"approved", func(r *broker.TaskRequest) { r.State = broker.RequestApproved }, closed},
		{"redeemed", func(r *broker.TaskRequest) { r.State = broker.RequestRedeemed }, closed},
		{"denied", func(r *broker.TaskRequest) { r.State = broker.RequestDenied }, closed},
		{"expired", func(r *broker.TaskRequest) { r.State = broker.RequestExpired }, closed},
		{"cancelled", func(r *broker.TaskRequest) { r.State = broker.RequestCancelled }, closed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.open(t)
			r := &broker.TaskRequest{ID: "r1", State: broker.RequestPending, CreatedAt: created, Deadline: deadline}
			update(t, s, func(tx broker.Tx) error { return tx.PutRequest(r) })
			tc.change(r)
			update(t, s, func(tx broker.Tx) error { return tx.PutRequest(r) })
			if got := observeIndexes(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("indexes %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("written closed", func(t *testing.T) {
		s := c.open(t)
		update(t, s, func(tx broker.Tx) error {
			return tx.PutRequest(&broker.TaskRequest{ID: "r1", State: broker.RequestDenied, CreatedAt: created, Deadline: deadline})
		})
		if got := observeIndexes(t, s); !reflect.DeepEqual(got, closed) {
			t.Errorf("indexes %+v, want none", got)
		}
	})
}

func (c *conformance) grantIndexes(t *testing.T) {
	created, expires := t0, at(15*time.Minute)
	active := indexView{Active: []string{"g1"}, All: []string{"g1"}, Due: []string{"grant:g1@15m0s"}}
	ended := indexView{All: []string{"g1"}}
	cases := []struct {
		name   string
		change func(*broker.Grant)
		want   indexView
	}{
		{"approved", func(*broker.Grant) {}, active},
		{"used", func(g *broker.Grant) { g.Uses++ }, active},
		{"expiry moved", func(g *broker.Grant) { g.ExpiresAt = at(time.Minute) }, indexView{
			Active: []string{"g1"}, All: []string{"g1"}, Due: []string{"grant:g1@1m0s"},
		}},
		{"revoked", func(g *broker.Grant) { g.State = broker.GrantRevoked }, ended},
		{"completed", func(g *broker.Grant) { g.State = broker.GrantCompleted }, ended},
		{"expired", func(g *broker.Grant) { g.State = broker.GrantExpired }, ended},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := c.open(t)
			g := &broker.Grant{ID: "g1", AgentID: "agent-1", State: broker.GrantActive, CreatedAt: created, ExpiresAt: expires}
			update(t, s, func(tx broker.Tx) error { return tx.PutGrant(g) })
			tc.change(g)
			update(t, s, func(tx broker.Tx) error { return tx.PutGrant(g) })
			if got := observeIndexes(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("indexes %+v, want %+v", got, tc.want)
			}
		})
	}
}

func (c *conformance) forEachOrder(t *testing.T) {
	s := c.open(t)
	update(t, s, func(tx broker.Tx) error {
		// Ids sort the other way from creation, so only the index orders them.
		for i, g := range []*broker.Grant{
			{ID: "g-c", AgentID: "a", State: broker.GrantActive, CreatedAt: at(1 * time.Second), ExpiresAt: at(time.Hour)},
			{ID: "g-b", AgentID: "b", State: broker.GrantActive, CreatedAt: at(2 * time.Second), ExpiresAt: at(time.Hour)},
			{ID: "g-a", AgentID: "a", State: broker.GrantActive, CreatedAt: at(3 * time.Second), ExpiresAt: at(time.Hour)},
			{ID: "g-0", AgentID: "a", State: broker.GrantRevoked, CreatedAt: at(0), ExpiresAt: at(time.Hour)},
			{ID: "g-z", AgentID: "ab", State: broker.GrantActive, CreatedAt: at(0), ExpiresAt: at(time.Hour)},
		} {
			if err := tx.PutGrant(g); err != nil {
				return err
			}
			r := &broker.TaskRequest{ID: "r" + g.ID[1:], State: broker.RequestPending, CreatedAt: g.CreatedAt, Deadline: at(time.Minute)}
			if i%2 == 1 {
				r.State = broker.RequestApproved
			}
			if err := tx.PutRequest(r); err != nil {
				return err
			}
			if err := tx.PutAgentState(broker.AgentState{ID: g.AgentID + "-state", Epoch: uint64(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	got := observeIndexes(t, s)
	want := indexView{
		All:     []string{"g-0", "g-z", "g-c", "g-b", "g-a"},
		Active:  []string{"g-z", "g-c", "g-b", "g-a"},
		Pending: []string{"r-z", "r-c", "r-a"},
		Due: []string{
			"grant:g-a@1h0m0s", "grant:g-b@1h0m0s", "grant:g-c@1h0m0s", "grant:g-z@1h0m0s",
		},
	}
	// The pending requests are due at one minute, before the grants.
	want.Due = append([]string{"request:r-a@1m0s", "request:r-c@1m0s", "request:r-z@1m0s"}, want.Due...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indexes\n got %+v\nwant %+v", got, want)
	}
	var agents []string
	view(t, s, func(tx broker.TxReader) error {
		return tx.ForEachAgentState(func(a broker.AgentState) error { agents = append(agents, a.ID); return nil })
	})
	if want := []string{"a-state", "ab-state", "b-state"}; !reflect.DeepEqual(agents, want) {
		t.Errorf("ForEachAgentState = %q, want by id %q", agents, want)
	}
	// Stopping early returns fn's error as is.
	view(t, s, func(tx broker.TxReader) error {
		n := 0
		err := tx.ForEachGrant(func(*broker.Grant) error {
			if n++; n == 2 {
				return errStop
			}
			return nil
		})
		if err != errStop || n != 2 { //nolint:errorlint // fn's error must come back as is
			t.Errorf("stopping early: %v after %d", err, n)
		}
		return nil
	})
}

// dueFixture writes requests and grants whose expiry entries interleave.
func dueFixture(tb testing.TB, s broker.Store) {
	tb.Helper()
	update(tb, s, func(tx broker.Tx) error {
		for _, r := range []*broker.TaskRequest{
			{ID: "r-late", State: broker.RequestPending, CreatedAt: t0, Deadline: at(30 * time.Minute)},
			{ID: "r-early", State: broker.RequestPending, CreatedAt: t0, Deadline: at(1 * time.Minute)},
			{ID: "r-tie", State: broker.RequestPending, CreatedAt: t0, Deadline: at(10 * time.Minute)},
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

func dueIDs(tx broker.TxReader, before time.Time) ([]string, error) {
	var got []string
	err := tx.ForEachDue(before, func(d broker.Due) error {
		got = append(got, string(d.Kind)+":"+d.ID)
		return nil
	})
	return got, err
}

// dueOrder: earliest first, At ≤ before inclusive, at equal times grants
// before requests, and a zero deadline is due before everything.
func (c *conformance) dueOrder(t *testing.T) {
	s := c.open(t)
	dueFixture(t, s)
	cases := []struct {
		before time.Time
		want   []string
	}{
		{at(-time.Hour), nil},
		{at(-time.Minute), []string{"grant:g-first"}},
		{at(5 * time.Minute), []string{"grant:g-first", "request:r-early"}},
		{at(time.Hour), []string{"grant:g-first", "request:r-early", "grant:g-mid", "request:r-tie", "request:r-late"}},
	}
	view(t, s, func(tx broker.TxReader) error {
		for _, tc := range cases {
			got, err := dueIDs(tx, tc.before)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ForEachDue(%v) = %q, %v; want %q", tc.before.Sub(t0), got, err, tc.want)
			}
		}
		return nil
	})
	update(t, s, func(tx broker.Tx) error {
		return tx.PutRequest(&broker.TaskRequest{ID: "r-zero", State: broker.RequestPending, CreatedAt: t0})
	})
	view(t, s, func(tx broker.TxReader) error {
		var first broker.Due
		err := tx.ForEachDue(at(-24*time.Hour), func(d broker.Due) error { first = d; return errStop })
		if err != errStop || first.ID != "r-zero" || first.Kind != broker.DueRequest || !first.At.IsZero() { //nolint:errorlint
			t.Errorf("first due = %+v, %v; want r-zero at the zero time", first, err)
		}
		return nil
	})
}

// duePutInside expires what is due from inside fn, as the broker's
// expiry loop does: each entry is seen once, and one ended from inside is
// not visited.
func (c *conformance) duePutInside(t *testing.T) {
	s := c.open(t)
	dueFixture(t, s)
	var visited []string
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachDue(at(time.Hour), func(d broker.Due) error {
			visited = append(visited, d.ID)
			if d.Kind == broker.DueGrant {
				g, err := tx.Grant(d.ID)
				if err != nil {
					return err
				}
				g.State = broker.GrantExpired
				return tx.PutGrant(g)
			}
			r, err := tx.Request(d.ID)
			if err != nil {
				return err
			}
			r.State = broker.RequestExpired
			if err := tx.PutRequest(r); err != nil {
				return err
			}
			if d.ID != "r-early" {
				return nil
			}
			// Ending a later entry from here means it is not visited.
			g, err := tx.Grant("g-mid")
			if err != nil {
				return err
			}
			g.State = broker.GrantRevoked
			return tx.PutGrant(g)
		})
	})
	if want := []string{"g-first", "r-early", "r-tie", "r-late"}; !reflect.DeepEqual(visited, want) {
		t.Errorf("visited %q, want %q", visited, want)
	}
	if got := observeIndexes(t, s); len(got.Due)+len(got.Active)+len(got.Pending) != 0 {
		t.Errorf("indexes after expiring everything: %+v", got)
	}
}

// dueMovedLater moves an entry to a later time that is still due: it is
// visited again there, and the scan ends.
func (c *conformance) dueMovedLater(t *testing.T) {
	s := c.open(t)
	dueFixture(t, s)
	var visited []string
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachDue(at(time.Hour), func(d broker.Due) error {
			if visited = append(visited, d.ID); len(visited) > 20 {
				return errors.New("ForEachDue does not end")
			}
			if d.ID != "g-first" || len(visited) > 1 {
				return nil
			}
			g, err := tx.Grant(d.ID)
			if err != nil {
				return err
			}
			g.ExpiresAt = at(20 * time.Minute)
			return tx.PutGrant(g)
		})
	})
	if want := []string{"g-first", "r-early", "g-mid", "r-tie", "g-first", "r-late"}; !reflect.DeepEqual(visited, want) {
		t.Errorf("visited %q, want %q", visited, want)
	}
}

func (c *conformance) revokeWhileVisiting(t *testing.T) {
	const n = 50
	s := c.open(t)
	update(t, s, func(tx broker.Tx) error {
		for i := range n {
			g := &broker.Grant{ID: string(rune('A' + i)), AgentID: "a", State: broker.GrantActive, CreatedAt: at(time.Duration(i) * time.Second), ExpiresAt: at(time.Hour)}
			if err := tx.PutGrant(g); err != nil {
				return err
			}
		}
		return nil
	})
	visited := 0
	update(t, s, func(tx broker.Tx) error {
		return tx.ForEachActiveGrant(func(g *broker.Grant) error {
			if visited++; visited > 2*n {
				return errors.New("ForEachActiveGrant does not end")
			}
			g.State = broker.GrantRevoked
			return tx.PutGrant(g)
		})
	})
	if visited != n {
		t.Errorf("revoked %d grants while visiting, want %d", visited, n)
	}
	if got := observeIndexes(t, s); len(got.Active)+len(got.Due) != 0 || len(got.All) != n {
		t.Errorf("indexes after revoking all: %+v", got)
	}
}
