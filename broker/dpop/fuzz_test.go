package dpop

import (
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds arbitrary DPoP header values to the verifier: it must
// never panic, and whatever it accepts must be a complete proof.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{rfc9449TokenProof, rfc9449RefreshProof, rfc9449ResourceProof, "", ".", "..", "a.b.c", "e30.e30.", "eyJ9.eyJ9.AA"} {
		f.Add(s, "https://server.example.com/token")
	}
	for _, alg := range allAlgs {
		p, err := NewProof(testKey(f, alg), alg, "POST", "https://server.example.com/token", ProofOptions{Now: time.Unix(1562262616, 0), Nonce: "n", AccessToken: "t"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, "https://server.example.com/token")
	}
	f.Add(strings.Replace(rfc9449TokenProof, "eyJ0", "eyJ", 1), "https://server.example.com:443/token?x")
	v := &Verifier{Now: func() time.Time { return time.Unix(1562262616, 0) }, Replay: NewReplayCache(1 << 12)}
	f.Fuzz(func(t *testing.T, proof, htu string) {
		p, err := v.Verify([]string{proof}, "POST", htu, "")
		if err != nil {
			if p != nil {
				t.Fatalf("Verify returned a proof and an error: %v", err)
			}
			return
		}
		if p.JKT == "" || p.JTI == "" || p.HTU == "" || p.Alg == "" {
			t.Fatalf("accepted an incomplete proof: %+v", p)
		}
	})
}

// FuzzHTU checks the normalisation never panics and is idempotent: a
// normalised URI normalises to itself.
func FuzzHTU(f *testing.F) {
	for _, s := range []string{"https://as.example.com/a/../b?c", "HTTP://[::1]:80", "https://x/%7e%2f/./..", "http://a:0/b/../../c/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, err := appendHTU(nil, s)
		if err != nil {
			return
		}
		twice, err := appendHTU(nil, string(once))
		if err != nil || string(twice) != string(once) {
			t.Fatalf("appendHTU(%q) = %q, then %q, %v", s, once, twice, err)
		}
	})
}

// FuzzJWK feeds arbitrary embedded keys to the key parser for each alg.
func FuzzJWK(f *testing.F) {
	f.Add(rfc9449JWK, "ES256")
	f.Add(rfc7638JWK, "RS256")
	f.Add(`{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, "EdDSA")
	f.Fuzz(func(t *testing.T, jwk, alg string) {
		spec := specFor(alg)
		if spec == nil {
			spec = specFor(string(jose.EdDSA))
		}
		pub, jkt, err := parseProofKey([]byte(jwk), spec)
		if err == nil && (pub == nil || len(jkt) != 43) {
			t.Fatalf("accepted %q without a key or thumbprint", jwk)
		}
		if err == nil {
			// The thumbprint computed from the members as sent must be
			// the one go-jose computes from the key.
			want, terr := Thumbprint(&jose.JSONWebKey{Key: pub})
			if terr != nil || want != jkt {
				t.Fatalf("thumbprint %s, go-jose %s (%v)", jkt, want, terr)
			}
		}
	})
}

// FuzzProofParts signs arbitrary header and claims JSON with a real key,
// so the fuzzer reaches past the signature into every later check.
func FuzzProofParts(f *testing.F) {
	s := MustSigner(f, jose.EdDSA)
	hdr := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":` + jwkOf(f, s) + `}`
	f.Add(hdr, `{"jti":"a","htm":"POST","htu":"https://server.example.com/token","iat":1562262616}`)
	f.Add(hdr, `{"jti":"a","htm":"POST","htu":"https://server.example.com/token","iat":1562262616.5,"nonce":"n","ath":"x"}`)
	f.Add(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"\u0041"}}`, `{"jti":"\ud800","htm":"POST","htu":"https://server.example.com/%2e%2E/token","iat":-1e300}`)
	now := time.Unix(1562262616, 0)
	f.Fuzz(func(t *testing.T, header, claims string) {
		v := &Verifier{Now: func() time.Time { return now }, Replay: NewReplayCache(16)}
		p, err := v.Verify([]string{forge(t, s, header, claims)}, "POST", "https://server.example.com/token", "")
		if err == nil && (p.JKT != s.JKT() || p.JTI == "") {
			t.Fatalf("accepted %s . %s as %+v", header, claims, p)
		}
	})
}
