package load_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/store/storetest"
)

// TestSeedGrants: the seeded grants are active grants in the store, each
// approved by the load policy.
func TestSeedGrants(t *testing.T) {
	setup, err := load.NewSetup(3, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.MustOpen(t)
	const n = 250
	if err := load.SeedGrants(context.Background(), st, setup, n, io.Discard); err != nil {
		t.Fatal(err)
	}
	active := 0
	err = st.View(context.Background(), func(tx broker.TxReader) error {
		return tx.ForEachActiveGrant(func(g *broker.Grant) error {
			active++
			return nil
		})
	})
	if err != nil || active != n {
		t.Fatalf("%d active grants (%v), want %d", active, err, n)
	}
	times, err := load.RevokeAllTimes(context.Background(), st, setup, 3)
	if err != nil || len(times) != 3 {
		t.Fatalf("revoke-all: %v %v", times, err)
	}
	var epoch uint64
	err = st.View(context.Background(), func(tx broker.TxReader) error {
		s, err := tx.Issuer()
		epoch = s.Epoch
		return err
	})
	if err != nil || epoch != 3 {
		t.Errorf("epoch %d after three revoke-alls (%v)", epoch, err)
	}
}

// TestAppendAuditEntries: the entries chain, so the server's verifier
// accepts the prepared log.
func TestAppendAuditEntries(t *testing.T) {
	st := storetest.MustOpen(t)
	const n = 20_500 // more than one transaction's worth
	if err := load.AppendAuditEntries(context.Background(), st, n, io.Discard); err != nil {
		t.Fatal(err)
	}
	svc, err := broker.New(context.Background(), &broker.Config{}, st, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	last, err := svc.VerifyAudit(context.Background())
	if err != nil || last < n {
		t.Fatalf("verified up to %d (%v), want at least %d", last, err, n)
	}
}

// TestSetupFiles: a saved setup loads back with the same agents and keys,
// and is not written over.
func TestSetupFiles(t *testing.T) {
	setup, err := load.NewSetup(2, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bench")
	if err := setup.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := load.LoadSetup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Agents) != 2 || got.Agents[1].AgentID != setup.Agents[1].AgentID ||
		got.Agents[1].JWK.KeyID != setup.Agents[1].JWK.KeyID || got.Resource.JWK.KeyID != setup.Resource.JWK.KeyID {
		t.Errorf("loaded %+v", got)
	}
	if err := setup.Save(dir); err == nil {
		t.Error("a second Save into the same directory wrote over the first")
	}
}
