package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testNow is the fixed clock of most tests.
var testNow = time.Unix(1_800_000_000, 0)

var (
	keysOnce sync.Once
	keys     map[jose.SignatureAlgorithm]crypto.Signer
)

// testKey returns a private key for alg, made once per test binary (RSA
// key generation is slow).
func testKey(tb testing.TB, alg jose.SignatureAlgorithm) crypto.Signer {
	tb.Helper()
	keysOnce.Do(func() {
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		keys = map[jose.SignatureAlgorithm]crypto.Signer{
			jose.EdDSA: ed, jose.ES256: p256, jose.ES384: p384, jose.PS256: rsaKey, jose.RS256: rsaKey,
		}
	})
	k, ok := keys[alg]
	if !ok {
		tb.Fatalf("no test key for %s", alg)
	}
	return k
}

// MustSigner returns a Signer for alg's test key.
func MustSigner(tb testing.TB, alg jose.SignatureAlgorithm) *Signer {
	tb.Helper()
	s, err := NewSigner(testKey(tb, alg), alg)
	if err != nil {
		tb.Fatalf("NewSigner(%s): %v", alg, err)
	}
	return s
}

// newVerifier returns a Verifier on the fixed clock with its own cache.
func newVerifier() *Verifier {
	return &Verifier{Now: func() time.Time { return testNow }, Replay: NewReplayCache(1024)}
}

// forge signs an arbitrary header and claims set with s's key, for proofs
// no honest Signer would make.
func forge(tb testing.TB, s *Signer, header, claims string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := s.sign([]byte(input))
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// jwkOf is the public JWK JSON of s, as the header carries it.
func jwkOf(tb testing.TB, s *Signer) string {
	tb.Helper()
	j, _, err := publicJWK(s.key.Public(), s.spec.alg)
	if err != nil {
		tb.Fatal(err)
	}
	return j
}
