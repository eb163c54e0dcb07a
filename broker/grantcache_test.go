package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeTxStore runs every transaction's fn on a Tx that only writes grants,
// into m.
type fakeTxStore struct {
	Store
	m map[string]Grant
}

type fakeTx struct {
	Tx
	m map[string]Grant
}

func (t fakeTx) PutGrant(g *Grant) error { t.m[g.ID] = *g; return nil }

func (s *fakeTxStore) Update(_ context.Context, fn func(Tx) error) error {
	return fn(fakeTx{m: s.m})
}

func (s *fakeTxStore) Batch(_ context.Context, fn func(Tx) error) error {
	// fn may run more than once.
	if err := fn(fakeTx{m: s.m}); err != nil {
		return err
	}
	return fn(fakeTx{m: s.m})
}

func TestGrantCacheRefusesAReadOlderThanAWrite(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	c := newGrantCache(8)
	g := &Grant{ID: "g1", State: GrantActive, ExpiresAt: now.Add(time.Hour)}
	gen := c.generation()
	c.drop([]string{"g2"}) // a write of any grant lands between the read and the put
	c.put(g, gen)
	if _, ok := c.get("g1"); ok {
		t.Fatal("a grant read before a write returned was cached")
	}
	c.put(g, c.generation())
	if got, ok := c.get("g1"); !ok || got != g {
		t.Fatal("a grant read after the last write was not cached")
	}
	c.drop([]string{"g1"})
	if _, ok := c.get("g1"); ok {
		t.Fatal("a written grant stayed cached")
	}
}

func TestCachesAreBounded(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	grants := newGrantCache(64)
	tokens := newVerifiedCache[ClientClaims](64)
	for i := range 1000 {
		id := fmt.Sprint("g", i)
		grants.put(&Grant{ID: id, State: GrantActive, ExpiresAt: now.Add(time.Hour)}, grants.generation())
		tokens.put(tokenDigest(id), "kid", &ClientClaims{JTI: id})
		if n := len(grants.m); n > 64 {
			t.Fatalf("%d grants cached, bound 64", n)
		}
		if n := len(tokens.m); n > 64 {
			t.Fatalf("%d tokens cached, bound 64", n)
		}
		if _, ok := grants.get(id); !ok {
			t.Fatalf("the grant just put is not cached")
		}
		if _, ok := tokens.get(tokenDigest(id), func(string) bool { return true }); !ok {
			t.Fatalf("the token just put is not cached")
		}
	}
}

func TestWatchGrantsDropsEveryGrantWritten(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	errRefused := errors.New("refused")
	tests := []struct {
		name  string
		write func(st Store) error
	}{
		{"update", func(st Store) error {
			return st.Update(context.Background(), func(tx Tx) error { return tx.PutGrant(&Grant{ID: "g1"}) })
		}},
		{"batch", func(st Store) error {
			return st.Batch(context.Background(), func(tx Tx) error { return tx.PutGrant(&Grant{ID: "g1"}) })
		}},
		{"update that fails after the write", func(st Store) error {
			return st.Update(context.Background(), func(tx Tx) error {
				if err := tx.PutGrant(&Grant{ID: "g1"}); err != nil {
					return err
				}
				return errRefused
			})
		}},
		{"batch that fails after the write", func(st Store) error {
			return st.Batch(context.Background(), func(tx Tx) error {
				if err := tx.PutGrant(&Grant{ID: "g1"}); err != nil {
					return err
				}
				return errRefused
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newGrantCache(8)
			st := watchGrants(&fakeTxStore{m: map[string]Grant{}}, c)
			c.put(&Grant{ID: "g1", State: GrantActive, ExpiresAt: now.Add(time.Hour)}, c.generation())
			c.put(&Grant{ID: "g2", State: GrantActive, ExpiresAt: now.Add(time.Hour)}, c.generation())
			gen := c.generation()
			if err := tt.write(st); err != nil && !errors.Is(err, errRefused) {
				t.Fatal(err)
			}
			if _, ok := c.get("g1"); ok {
				t.Error("the grant written is still cached")
			}
			if _, ok := c.get("g2"); !ok {
				t.Error("a grant not written was dropped")
			}
			if c.generation() == gen {
				t.Error("the generation did not move")
			}
		})
	}
}
