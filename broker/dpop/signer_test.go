package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var allAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.PS256, jose.RS256}

func TestRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			key := testKey(t, alg)
			proof, err := NewProof(key, alg, "POST", "https://as.example.com/token?ignored=1", ProofOptions{Now: testNow, AccessToken: testToken, Nonce: "n-1"})
			if err != nil {
				t.Fatalf("NewProof: %v", err)
			}
			v := newVerifier()
			v.CheckNonce = func(n string) bool { return n == "n-1" }
			p, err := v.Verify([]string{proof}, "POST", "https://as.example.com/token", testToken)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			jkt, err := Thumbprint(&jose.JSONWebKey{Key: key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if p.JKT != jkt || p.Alg != alg || p.HTU != "https://as.example.com/token" || !p.IssuedAt.Equal(testNow) || len(p.JTI) < 22 {
				t.Fatalf("Verify = %+v, want jkt %s", p, jkt)
			}
			// A private JWK works as the key too, and thumbprints to the same.
			s, err := NewSigner(&jose.JSONWebKey{Key: key}, alg)
			if err != nil || s.JKT() != jkt {
				t.Fatalf("NewSigner(JWK) = %v, %v; jkt want %s", s, err, jkt)
			}
			if pub := s.PublicJWK(); !pub.IsPublic() || pub.KeyID != jkt {
				t.Fatalf("PublicJWK = %+v", pub)
			}
		})
	}
}

// Proofs made here must be standard JWS (go-jose verifies them), and
// proofs made by go-jose must pass the Verifier.
func TestInteropWithGoJose(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(string(alg), func(t *testing.T) {
			key := testKey(t, alg)
			proof, err := NewProof(key, alg, "GET", testHTU, ProofOptions{Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatalf("go-jose parse: %v", err)
			}
			h := jws.Signatures[0].Header
			if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
				t.Fatalf("go-jose header = %+v", h)
			}
			payload, err := jws.Verify(h.JSONWebKey)
			if err != nil {
				t.Fatalf("go-jose verify: %v", err)
			}
			var c map[string]any
			if err := json.Unmarshal(payload, &c); err != nil || c["htm"] != "GET" || c["htu"] != testHTU || c["iat"] != float64(testNow.Unix()) {
				t.Fatalf("claims = %v, %v", c, err)
			}

			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			obj, err := signer.Sign([]byte(claimsJSON("")))
			if err != nil {
				t.Fatal(err)
			}
			theirs, _ := obj.CompactSerialize()
			if _, err := newVerifier().Verify([]string{theirs}, "GET", testHTU, ""); err != nil {
				t.Fatalf("Verify(go-jose proof): %v", err)
			}
		})
	}
}

func TestNewSignerRefusals(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, c := range []struct {
		name string
		key  any
		alg  jose.SignatureAlgorithm
	}{
		{"public key", p256.Public(), jose.ES256},
		{"public JWK", &jose.JSONWebKey{Key: p256.Public()}, jose.ES256},
		{"nil JWK", (*jose.JSONWebKey)(nil), jose.ES256},
		{"symmetric", []byte("secret"), jose.HS256},
		{"alg none", p256, "none"},
		{"HS256 with EC key", p256, jose.HS256},
		{"curve not for alg", p256, jose.ES384},
		{"unsupported curve", p521, jose.ES512},
		{"RSA key for EdDSA", testKey(t, jose.RS256), jose.EdDSA},
		{"Ed25519 key for ES256", testKey(t, jose.EdDSA), jose.ES256},
	} {
		if _, err := NewSigner(c.key, c.alg); err == nil {
			t.Errorf("%s: NewSigner accepted", c.name)
		}
	}
}

func TestProofOptions(t *testing.T) {
	s := MustSigner(t, jose.EdDSA)
	p, err := s.Proof("PATCH", "https://rs.example.com/x#frag", ProofOptions{Now: testNow, JTI: "my-jti", Nonce: `odd "nonce"`})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := b64.DecodeString(strings.Split(p, ".")[1])
	var c struct {
		JTI, HTM, HTU, Nonce string
		IAT                  int64
		ATH                  *string
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.JTI != "my-jti" || c.HTM != "PATCH" || c.HTU != "https://rs.example.com/x" || c.Nonce != `odd "nonce"` || c.IAT != testNow.Unix() || c.ATH != nil {
		t.Fatalf("claims = %+v", c)
	}
	// Random jtis differ.
	a, _ := s.Proof("GET", testHTU, ProofOptions{})
	b, _ := s.Proof("GET", testHTU, ProofOptions{})
	if a == b {
		t.Fatal("two proofs are identical")
	}
	// Zero Now is the current time.
	pr, err := (&Verifier{Replay: NewReplayCache(0)}).Verify([]string{a}, "GET", testHTU, "")
	if err != nil || time.Since(pr.IssuedAt) > time.Minute {
		t.Fatalf("Verify(now) = %+v, %v", pr, err)
	}
	for _, bad := range []struct{ htm, htu string }{
		{"", testHTU}, {"GET POST", testHTU}, {"GET", "/relative"}, {"GET", "ftp://example.com/"}, {"GET", "https://user@example.com/"},
	} {
		if _, err := s.Proof(bad.htm, bad.htu, ProofOptions{}); err == nil {
			t.Errorf("Proof(%q, %q) accepted", bad.htm, bad.htu)
		}
	}
	if _, err := s.Proof("GET", testHTU, ProofOptions{JTI: "\xff"}); err == nil {
		t.Error("Proof with a jti that is not UTF-8 accepted")
	}
}

// A crypto.Signer that is not one of the standard key types (a KMS or HSM
// key) works as long as its public key is.
type opaqueSigner struct{ crypto.Signer }

func TestOpaqueSigner(t *testing.T) {
	s, err := NewSigner(opaqueSigner{testKey(t, jose.ES256)}, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Proof("GET", testHTU, ProofOptions{Now: testNow})
	if _, err := newVerifier().Verify([]string{p}, "GET", testHTU, ""); err != nil {
		t.Fatal(err)
	}
}
