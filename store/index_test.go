package store

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/writhq/writ/broker"
)

// indexState is every index key a store holds, by bucket.
type indexState map[string][]string

func indexes(tb testing.TB, s *Store) indexState {
	tb.Helper()
	st := indexState{}
	for _, b := range [][]byte{bucketRequestsPending, bucketGrantsByCreated, bucketGrantsActive, bucketDue} {
		if keys := bucketKeys(tb, s, b); len(keys) > 0 {
			st[string(b)] = keys
		}
	}
	return st
}

func tk(t time.Time) string {
	var b [timeKeyLen]byte
	putTimeKey(b[:], t)
	return string(b[:])
}

func TestRequestIndexes(t *testing.T) {
	created, deadline := t0, at(5*time.Minute)
	pending := indexState{
		"requests_pending": {tk(created) + "r1"},
		"due":              {tk(deadline) + "r" + "r1"},
	}
	closed := indexState{} // a closed request is in no index
	cases := []struct {
		name   string
		change func(*broker.TaskRequest)
		want   indexState
	}{
		{"submitted", func(*broker.TaskRequest) {}, pending},
		{"deadline moved", func(r *broker.TaskRequest) { r.Deadline = at(time.Hour) }, indexState{
			"requests_pending": {tk(created) + "r1"},
			"due":              {tk(at(time.Hour)) + "r" + "r1"},
		}},
		{"approved", func(r *broker.TaskRequest) { r.State = broker.RequestApproved }, closed},
		{"redeemed", func(r *broker.TaskRequest) { r.State = broker.RequestRedeemed }, closed},
		{"denied", func(r *broker.TaskRequest) { r.State = broker.RequestDenied }, closed},
		{"expired", func(r *broker.TaskRequest) { r.State = broker.RequestExpired }, closed},
		{"cancelled", func(r *broker.TaskRequest) { r.State = broker.RequestCancelled }, closed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := MustOpen(t)
			r := &broker.TaskRequest{ID: "r1", State: broker.RequestPending, CreatedAt: created, Deadline: deadline}
			update(t, s, func(tx broker.Tx) error { return tx.PutRequest(r) })
			tc.change(r)
			update(t, s, func(tx broker.Tx) error { return tx.PutRequest(r) })
			if got := indexes(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("indexes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGrantIndexes(t *testing.T) {
	created, expires := t0, at(15*time.Minute)
	active := indexState{
		"grants_by_created": {tk(created) + "g1"},
		"grants_active":     {tk(created) + "g1"},
		"due":               {tk(expires) + "g" + "g1"},
	}
	ended := indexState{"grants_by_created": {tk(created) + "g1"}}
	cases := []struct {
		name   string
		change func(*broker.Grant)
		want   indexState
	}{
		{"approved", func(*broker.Grant) {}, active},
		{"used", func(g *broker.Grant) { g.Uses++ }, active},
		{"expiry moved", func(g *broker.Grant) { g.ExpiresAt = at(time.Minute) }, indexState{
			"grants_by_created": {tk(created) + "g1"},
			"grants_active":     {tk(created) + "g1"},
			"due":               {tk(at(time.Minute)) + "g" + "g1"},
		}},
		{"revoked", func(g *broker.Grant) { g.State = broker.GrantRevoked }, ended},
		{"completed", func(g *broker.Grant) { g.State = broker.GrantCompleted }, ended},
		{"expired", func(g *broker.Grant) { g.State = broker.GrantExpired }, ended},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := MustOpen(t)
			g := &broker.Grant{ID: "g1", AgentID: "agent-1", State: broker.GrantActive, CreatedAt: created, ExpiresAt: expires}
			update(t, s, func(tx broker.Tx) error { return tx.PutGrant(g) })
			tc.change(g)
			update(t, s, func(tx broker.Tx) error { return tx.PutGrant(g) })
			if got := indexes(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("indexes %q, want %q", got, tc.want)
			}
		})
	}
}

// TestObsoleteIndexesDropped: indexes an older writ kept and nothing reads
// (requests by creation, grants by agent) are dropped when a store is
// opened for writing, so they never hold stale entries.
func TestObsoleteIndexesDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(btx *bolt.Tx) error {
		for _, name := range obsoleteBuckets {
			b, err := btx.CreateBucket(name)
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.View(func(btx *bolt.Tx) error {
		for _, name := range obsoleteBuckets {
			if btx.Bucket(name) != nil {
				t.Errorf("obsolete bucket %s kept", name)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
