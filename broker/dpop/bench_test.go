package dpop

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// benchVerify verifies fresh proofs: a pool of distinct ones made up front,
// with a new replay cache each time the pool comes round again.
func benchVerify(b *testing.B, alg jose.SignatureAlgorithm, token string) {
	s := MustSigner(b, alg)
	now := time.Now()
	pool := make([]string, 1024)
	for i := range pool {
		p, err := s.Proof("GET", testHTU, ProofOptions{Now: now, AccessToken: token})
		if err != nil {
			b.Fatal(err)
		}
		pool[i] = p
	}
	v := &Verifier{Now: func() time.Time { return now }}
	values := make([]string, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(pool) == 0 {
			v.Replay = NewReplayCache(0)
		}
		values[0] = pool[i%len(pool)]
		if _, err := v.Verify(values, "GET", testHTU, token); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyEdDSA(b *testing.B)          { benchVerify(b, jose.EdDSA, "") }
func BenchmarkVerifyEdDSAWithToken(b *testing.B) { benchVerify(b, jose.EdDSA, testToken) }
func BenchmarkVerifyES256(b *testing.B)          { benchVerify(b, jose.ES256, "") }
func BenchmarkVerifyRS256(b *testing.B)          { benchVerify(b, jose.RS256, "") }

// BenchmarkVerifyGoJose is the same work done with go-jose, for comparison
// with BenchmarkVerifyEdDSA (no htu normalisation or replay check).
func BenchmarkVerifyGoJose(b *testing.B) {
	p, _ := MustSigner(b, jose.EdDSA).Proof("GET", testHTU, ProofOptions{})
	b.ReportAllocs()
	for b.Loop() {
		jws, err := jose.ParseSignedCompact(p, defaultAlgs)
		if err != nil {
			b.Fatal(err)
		}
		h := jws.Signatures[0].Header
		if _, err := jws.Verify(h.JSONWebKey); err != nil {
			b.Fatal(err)
		}
		if _, err := Thumbprint(h.JSONWebKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewProofEdDSA(b *testing.B) {
	s := MustSigner(b, jose.EdDSA)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Proof("POST", "https://as.example.com/token", ProofOptions{AccessToken: testToken}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplayCacheSeenParallel(b *testing.B) {
	// Entries live 100ms, so the cache reaches a steady state of sweeping
	// as many as it records, as under real load.
	c := NewReplayCache(1 << 22)
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 32)
		var exp time.Time
		for i := 0; pb.Next(); i++ {
			if i%1024 == 0 {
				exp = time.Now().Add(100 * time.Millisecond)
			}
			buf = strconv.AppendInt(append(buf[:0], "jti-"...), next.Add(1), 10)
			if c.Seen(string(buf), exp) {
				b.Fatal("fresh key seen")
			}
		}
	})
}
