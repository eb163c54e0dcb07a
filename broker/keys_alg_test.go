package broker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// headerAlg returns the alg in a compact JWS's protected header.
func headerAlg(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		t.Fatalf("parse %s…: %v", raw[:min(len(raw), 12)], err)
	}
	return jws.Signatures[0].Protected.Algorithm
}

// TestSigningAlgorithm: a new store signs tokens and SETs with ES256 unless
// told otherwise; EdDSA and RS256 stay selectable; an unknown algorithm is
// refused before anything is written.
func TestSigningAlgorithm(t *testing.T) {
	for _, tt := range []struct {
		opt  jose.SignatureAlgorithm
		want string
	}{
		{"", "ES256"},
		{jose.ES256, "ES256"},
		{jose.EdDSA, "EdDSA"},
		{jose.RS256, "RS256"},
	} {
		t.Run(string(tt.want)+"/"+string(tt.opt), func(t *testing.T) {
			st := brokertest.NewStore()
			c := newClock()
			svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{
				Issuer: "https://writ.example", Now: c.Now, Alg: tt.opt, SubmitRate: 1000, SubmitBurst: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if got := svc.CurrentSigningKey().Alg; got != tt.want {
				t.Fatalf("current key alg %s, want %s", got, tt.want)
			}
			h := &harness{t: t, svc: svc, st: st, clock: c, ctx: context.Background()}
			tok := h.redeem("release-bot", approved(h))
			if got := headerAlg(t, tok.AccessToken); got != tt.want {
				t.Errorf("access token alg %s, want %s", got, tt.want)
			}
			set, err := svc.Sign("secevent+jwt", map[string]any{"jti": "x"})
			if err != nil {
				t.Fatal(err)
			}
			if got := headerAlg(t, set); got != tt.want {
				t.Errorf("SET alg %s, want %s", got, tt.want)
			}
			if _, err := svc.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("own token does not verify: %v", err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := broker.New(context.Background(), testConfig(), brokertest.NewStore(), broker.Options{Alg: "HS256"})
		if broker.ErrorCode(err) != broker.EINVALID || !strings.Contains(err.Error(), "HS256") {
			t.Fatalf("HS256: %v, want EINVALID naming it", err)
		}
	})
}

// TestExistingStoreKeepsItsKey: an EdDSA store opened after the default
// became ES256 keeps signing with its EdDSA key until rotated, and a
// rotation without an algorithm keeps EdDSA too.
func TestExistingStoreKeepsItsKey(t *testing.T) {
	st := brokertest.NewStore()
	c := newClock()
	ctx := context.Background()
	first, err := broker.New(ctx, testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now, Alg: jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	kid := first.CurrentSigningKey().ID
	again, err := broker.New(ctx, testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if k := again.CurrentSigningKey(); k.ID != kid || k.Alg != "EdDSA" {
		t.Fatalf("reopened store signs with %s %s, want EdDSA %s", k.Alg, k.ID, kid)
	}
	k, err := again.RotateKeys(ctx, op, "")
	if err != nil || k.Alg != "EdDSA" {
		t.Fatalf("rotate without alg: %v %v, want EdDSA", k.Alg, err)
	}
	k, err = again.RotateKeys(ctx, op, jose.ES256)
	if err != nil || k.Alg != "ES256" || again.CurrentSigningKey().ID != k.ID {
		t.Fatalf("rotate to ES256: %+v %v", k, err)
	}
}
