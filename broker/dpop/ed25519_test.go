package dpop

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestEd25519SmallOrderKeys(t *testing.T) {
	var bad [][]byte
	for _, y := range lowOrderY {
		for _, sign := range []byte{0, 0x80} {
			k := y
			k[31] |= sign
			bad = append(bad, k[:])
		}
	}
	// Non-canonical: y = p and y = p+1, spellings of 0 and 1.
	for _, low := range []byte{0xed, 0xee} {
		k := [32]byte{0: low, 31: 0x7f}
		for i := 1; i < 31; i++ {
			k[i] = 0xff
		}
		bad = append(bad, k[:])
	}
	for _, k := range bad {
		if ed25519KeyUsable(k) {
			t.Errorf("ed25519KeyUsable(%x) = true", k)
		}
		jwk := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k) + `"}`
		if _, _, err := parseProofKey([]byte(jwk), specFor("EdDSA")); Reason(err) != ReasonKey {
			t.Errorf("parseProofKey(%x): %v", k, err)
		}
	}
	// go-jose keeps its own table of the low-order encodings Go accepts:
	// every canonical one computed here must be on it.
	for _, y := range lowOrderY {
		var k jose.JSONWebKey
		err := json.Unmarshal([]byte(`{"crv":"Ed25519","kty":"OKP","x":"`+b64.EncodeToString(y[:])+`"}`), &k)
		if err == nil {
			if _, err = k.Thumbprint(0x5); err == nil {
				t.Errorf("go-jose accepts %x; the computed low-order set is wrong", y)
			}
		}
	}
	for range 100 {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		if !ed25519KeyUsable(pub) {
			t.Fatalf("ed25519KeyUsable(%x) = false for a generated key", pub)
		}
	}
}

// With the identity as the key, (R = B, S = 1) verifies for any message:
// the reason small-order keys are refused.
func TestEd25519IdentityKeyForgery(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	sig := make([]byte, 64)
	copy(sig, []byte{0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
		0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66}) // the base point B
	sig[32] = 1
	if !ed25519.Verify(identity, []byte("anything at all"), sig) {
		t.Skip("crypto/ed25519 now refuses the identity key itself")
	}
	proof := b64.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"crv":"Ed25519","kty":"OKP","x":"`+b64.EncodeToString(identity)+`"}}`)) +
		"." + b64.EncodeToString([]byte(claimsJSON(""))) + "." + b64.EncodeToString(sig)
	if _, err := newVerifier().Verify([]string{proof}, "GET", testHTU, ""); Reason(err) != ReasonKey {
		t.Fatalf("forged proof with the identity key: %v, want reason %s", err, ReasonKey)
	}
}
