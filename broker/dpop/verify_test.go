package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testHTU   = "https://rs.example.com/v1/things"
	testToken = "at-1.secret-part"
)

// claimsJSON is a claims set on the test clock, with overrides.
func claimsJSON(extra string) string {
	base := fmt.Sprintf(`"jti":"j-%d","htm":"GET","htu":%q,"iat":%d`, time.Now().UnixNano(), testHTU, testNow.Unix())
	if extra != "" {
		base += "," + extra
	}
	return "{" + base + "}"
}

func TestVerifyRefusals(t *testing.T) {
	ed := MustSigner(t, jose.EdDSA)
	es := MustSigner(t, jose.ES256)
	hdr := func(typ, alg, jwk string) string {
		return `{"typ":"` + typ + `","alg":"` + alg + `","jwk":` + jwk + `}`
	}
	edHdr := hdr("dpop+jwt", "EdDSA", jwkOf(t, ed))
	good := func(opts ProofOptions) string {
		if opts.Now.IsZero() {
			opts.Now = testNow
		}
		p, err := ed.Proof("GET", testHTU, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakJWK := `{"e":"AQAB","kty":"RSA","n":"` + b64.EncodeToString(weak.N.Bytes()) + `"}`
	flip := func(p string) string {
		b := []byte(p)
		i := len(b) - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	type tc struct {
		name    string
		values  []string
		htm     string
		htu     string
		token   string
		reason  string
		message string // substring of the error, if set
	}
	cases := []tc{
		{name: "no header", values: nil, reason: ReasonMissing},
		{name: "empty header", values: []string{" "}, reason: ReasonMissing},
		{name: "two DPoP headers", values: []string{good(ProofOptions{}), good(ProofOptions{})}, reason: ReasonMultiple},
		{name: "garbage", values: []string{"not a jwt"}, reason: ReasonMalformed},
		{name: "two parts", values: []string{"eyJhbGciOiJFZERTQSJ9.eyJ9"}, reason: ReasonMalformed},
		{name: "four parts", values: []string{good(ProofOptions{}) + ".AAAA"}, reason: ReasonMalformed},
		{name: "padding", values: []string{"eyJ0eXAiOiJkcG9wK2p3dCJ9==.e30.AA"}, reason: ReasonMalformed},
		{name: "line break", values: []string{"eyJ0eXAi\nOiJkcG9wK2p3dCJ9.e30.AA"}, reason: ReasonMalformed},
		{name: "bad base64 length", values: []string{"e.e30.AA"}, reason: ReasonMalformed},
		{name: "header not JSON", values: []string{b64.EncodeToString([]byte("typ=dpop+jwt")) + ".e30.AA"}, reason: ReasonMalformed},
		{name: "header an array", values: []string{b64.EncodeToString([]byte(`["typ"]`)) + ".e30.AA"}, reason: ReasonMalformed},
		{name: "oversized", values: []string{strings.Repeat("A", MaxProofSize+1)}, reason: ReasonMalformed},
		{name: "wrong typ", values: []string{forge(t, ed, hdr("jwt", "EdDSA", jwkOf(t, ed)), claimsJSON(""))}, reason: ReasonType, message: "typ is jwt"},
		{name: "typ in other case", values: []string{forge(t, ed, hdr("DPoP+JWT", "EdDSA", jwkOf(t, ed)), claimsJSON(""))}, reason: ReasonType},
		{name: "typ name in other case", values: []string{forge(t, ed, `{"TYP":"dpop+jwt","alg":"EdDSA","jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonType},
		{name: "no typ", values: []string{forge(t, ed, `{"alg":"EdDSA","jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonType},
		{name: "duplicate typ", values: []string{forge(t, ed, `{"typ":"jwt","typ":"dpop+jwt","alg":"EdDSA","jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonMalformed},
		{name: "alg none", values: []string{b64.EncodeToString([]byte(hdr("dpop+jwt", "none", jwkOf(t, ed)))) + "." + b64.EncodeToString([]byte(claimsJSON(""))) + "."}, reason: ReasonAlg},
		{name: "alg HS256", values: []string{forge(t, ed, hdr("dpop+jwt", "HS256", `{"kty":"oct","k":"c2VjcmV0"}`), claimsJSON(""))}, reason: ReasonAlg},
		{name: "alg missing", values: []string{forge(t, ed, `{"typ":"dpop+jwt","jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonAlg},
		{name: "alg not a string", values: []string{forge(t, ed, `{"typ":"dpop+jwt","alg":1,"jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonMalformed},
		{name: "crit header", values: []string{forge(t, ed, `{"typ":"dpop+jwt","alg":"EdDSA","crit":["b64"],"b64":false,"jwk":`+jwkOf(t, ed)+`}`, claimsJSON(""))}, reason: ReasonMalformed},
		{name: "missing jwk", values: []string{forge(t, ed, `{"typ":"dpop+jwt","alg":"EdDSA"}`, claimsJSON(""))}, reason: ReasonKey},
		{name: "jwk a string", values: []string{forge(t, ed, `{"typ":"dpop+jwt","alg":"EdDSA","jwk":"key"}`, claimsJSON(""))}, reason: ReasonKey},
		{name: "private jwk", values: []string{forge(t, ed, hdr("dpop+jwt", "EdDSA", strings.TrimSuffix(jwkOf(t, ed), "}")+`,"d":"`+b64.EncodeToString(make([]byte, 32))+`"}`), claimsJSON(""))}, reason: ReasonKey, message: "private member"},
		{name: "symmetric jwk", values: []string{forge(t, ed, hdr("dpop+jwt", "EdDSA", `{"kty":"oct","k":"c2VjcmV0"}`), claimsJSON(""))}, reason: ReasonKey},
		{name: "jwk type not for alg", values: []string{forge(t, ed, hdr("dpop+jwt", "EdDSA", jwkOf(t, es)), claimsJSON(""))}, reason: ReasonKey, message: "kty is EC, alg EdDSA needs OKP"},
		{name: "jwk alg differs", values: []string{forge(t, ed, hdr("dpop+jwt", "EdDSA", strings.TrimSuffix(jwkOf(t, ed), "}")+`,"alg":"ES256"}`), claimsJSON(""))}, reason: ReasonKey},
		{name: "EC jwk with short x", values: []string{forge(t, es, hdr("dpop+jwt", "ES256", `{"crv":"P-256","kty":"EC","x":"AAAA","y":"AAAA"}`), claimsJSON(""))}, reason: ReasonKey},
		{name: "EC jwk not on curve", values: []string{forge(t, es, hdr("dpop+jwt", "ES256", `{"crv":"P-256","kty":"EC","x":"`+b64.EncodeToString(make([]byte, 32))+`","y":"`+b64.EncodeToString(append(make([]byte, 31), 1))+`"}`), claimsJSON(""))}, reason: ReasonKey},
		{name: "RSA key too small", values: []string{forge(t, ed, hdr("dpop+jwt", "RS256", weakJWK), claimsJSON(""))}, reason: ReasonKey, message: "1024-bit"},
		{name: "bad signature", values: []string{flip(good(ProofOptions{}))}, reason: ReasonSignature},
		{name: "signed by another key", values: []string{forge(t, MustSigner(t, jose.ES256), hdr("dpop+jwt", "ES256", `{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}`), claimsJSON(""))}, reason: ReasonSignature},
		{name: "no jti", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"htm":"GET","htu":%q,"iat":%d}`, testHTU, testNow.Unix()))}, reason: ReasonClaims, message: "no jti"},
		{name: "empty jti", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"","htm":"GET","htu":%q,"iat":%d}`, testHTU, testNow.Unix()))}, reason: ReasonClaims},
		{name: "jti not a string", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":7,"htm":"GET","htu":%q,"iat":%d}`, testHTU, testNow.Unix()))}, reason: ReasonClaims},
		{name: "no iat", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":%q}`, testHTU))}, reason: ReasonClaims, message: "no iat"},
		{name: "iat a string", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":%q,"iat":"%d"}`, testHTU, testNow.Unix()))}, reason: ReasonClaims},
		{name: "claims not an object", values: []string{forge(t, ed, edHdr, `[1,2]`)}, reason: ReasonMalformed},
		{name: "duplicate htm", values: []string{forge(t, ed, edHdr, claimsJSON(`"htm":"POST"`))}, reason: ReasonMalformed},
		{name: "wrong htm", values: []string{good(ProofOptions{})}, htm: "POST", reason: ReasonMethod, message: "DPoP proof htm is GET, request is POST"},
		{name: "htm in other case", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"get","htu":%q,"iat":%d}`, testHTU, testNow.Unix()))}, reason: ReasonMethod},
		{name: "wrong htu path", values: []string{good(ProofOptions{})}, htu: "https://rs.example.com/v1/other", reason: ReasonURI},
		{name: "wrong htu host", values: []string{good(ProofOptions{})}, htu: "https://evil.example.com/v1/things", reason: ReasonURI},
		{name: "wrong htu scheme", values: []string{good(ProofOptions{})}, htu: "http://rs.example.com/v1/things", reason: ReasonURI},
		{name: "wrong htu port", values: []string{good(ProofOptions{})}, htu: "https://rs.example.com:8443/v1/things", reason: ReasonURI},
		{name: "path case matters", values: []string{good(ProofOptions{})}, htu: "https://rs.example.com/V1/things", reason: ReasonURI},
		{name: "htu not a URI", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":"/v1/things","iat":%d}`, testNow.Unix()))}, reason: ReasonURI},
		{name: "htu with userinfo", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":"https://u@rs.example.com/v1/things","iat":%d}`, testNow.Unix()))}, reason: ReasonURI},
		{name: "iat too old", values: []string{good(ProofOptions{Now: testNow.Add(-61 * time.Second)})}, reason: ReasonIssuedAt, message: "1m1s old"},
		{name: "iat in the future", values: []string{good(ProofOptions{Now: testNow.Add(6 * time.Second)})}, reason: ReasonIssuedAt, message: "in the future"},
		{name: "iat millennia ahead", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":%q,"iat":%d}`, testHTU, int64(1)<<40-1))}, reason: ReasonIssuedAt, message: "in the future"},
		{name: "iat millennia ago", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":%q,"iat":%d}`, testHTU, -(int64(1)<<40)+1))}, reason: ReasonIssuedAt, message: "old"},
		{name: "iat beyond NumericDate range", values: []string{forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"x","htm":"GET","htu":%q,"iat":1e300}`, testHTU))}, reason: ReasonClaims},
		{name: "missing ath with token", values: []string{good(ProofOptions{})}, token: testToken, reason: ReasonTokenHash},
		{name: "wrong ath", values: []string{good(ProofOptions{AccessToken: "another-token"})}, token: testToken, reason: ReasonTokenHash},
		{name: "ath not a string", values: []string{forge(t, ed, edHdr, claimsJSON(`"ath":5`))}, token: testToken, reason: ReasonClaims},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			htm, htu := c.htm, c.htu
			if htm == "" {
				htm = "GET"
			}
			if htu == "" {
				htu = testHTU
			}
			p, err := newVerifier().Verify(c.values, htm, htu, c.token)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", p)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify error %v is not an *Error", err)
			}
			if e.Reason != c.reason {
				t.Fatalf("reason %q (%v), want %q", e.Reason, err, c.reason)
			}
			if c.message != "" && !strings.Contains(err.Error(), c.message) {
				t.Fatalf("message %q does not say %q", err, c.message)
			}
			if e.Code() != CodeInvalidProof {
				t.Fatalf("Code %q, want %q", e.Code(), CodeInvalidProof)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("message %q echoes the access token", err)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	ed := MustSigner(t, jose.EdDSA)
	edHdr := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":` + jwkOf(t, ed) + `}`
	proof := func(htu string, opts ProofOptions) string {
		if opts.Now.IsZero() {
			opts.Now = testNow
		}
		p, err := ed.Proof("GET", htu, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name          string
		proof         string
		htu, token    string
		wantHTU       string
		wantIssuedAt  time.Time
		checkIssuedAt bool
	}{
		{name: "request URI has a query", proof: proof(testHTU, ProofOptions{}), htu: testHTU + "?page=2&sort=asc#frag"},
		{name: "proof htu had a query, which NewProof drops", proof: proof(testHTU+"?x=1", ProofOptions{}), htu: testHTU, wantHTU: testHTU},
		{name: "proof htu with a query is compared without it", proof: forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"q","htm":"GET","htu":"%s?a=b#c","iat":%d}`, testHTU, testNow.Unix())), htu: testHTU, wantHTU: testHTU + "?a=b#c"},
		{name: "case of scheme and host, default port", proof: proof("HTTPS://RS.Example.COM:443/v1/things", ProofOptions{}), htu: testHTU},
		{name: "percent-encoding case and unreserved", proof: proof("https://rs.example.com/v1/%7ethings%2f", ProofOptions{}), htu: "https://rs.example.com/v1/~things%2F"},
		{name: "empty path is /", proof: proof("https://rs.example.com", ProofOptions{}), htu: "https://rs.example.com/"},
		{name: "dot segments", proof: proof("https://rs.example.com/v1/./a/../things", ProofOptions{}), htu: testHTU},
		{name: "http default port", proof: proof("http://localhost:80/x", ProofOptions{}), htu: "http://LOCALHOST/x"},
		{name: "explicit non-default port", proof: proof("http://127.0.0.1:8080/x", ProofOptions{}), htu: "http://127.0.0.1:8080/x"},
		{name: "IPv6 literal", proof: proof("https://[::1]:443/x", ProofOptions{}), htu: "https://[::1]/x"},
		{name: "iat at the window's edge", proof: proof(testHTU, ProofOptions{Now: testNow.Add(-60 * time.Second)}), htu: testHTU},
		{name: "iat within the skew", proof: proof(testHTU, ProofOptions{Now: testNow.Add(5 * time.Second)}), htu: testHTU},
		{name: "ath with its token", proof: proof(testHTU, ProofOptions{AccessToken: testToken}), htu: testHTU, token: testToken},
		{name: "ath without a token is ignored", proof: proof(testHTU, ProofOptions{AccessToken: testToken}), htu: testHTU},
		{name: "fractional iat", proof: forge(t, ed, edHdr, fmt.Sprintf(`{"jti":"f","htm":"GET","htu":%q,"iat":%d.75}`, testHTU, testNow.Unix())), htu: testHTU, wantIssuedAt: testNow.Add(750 * time.Millisecond), checkIssuedAt: true},
		{name: "escaped member names and values", proof: forge(t, ed, `{"t\u0079p":"dpop\u002bjwt","alg":"EdDSA","jwk":`+jwkOf(t, ed)+`}`, fmt.Sprintf(`{"jti":"e","htm":"G\u0045T","htu":%q,"iat":%d}`, testHTU, testNow.Unix())), htu: testHTU},
		{name: "unknown members ignored", proof: forge(t, ed, `{"typ":"dpop+jwt","alg":"EdDSA","kid":"k1","jwk":`+strings.TrimSuffix(jwkOf(t, ed), "}")+`,"use":"sig","alg":"EdDSA"}}`, claimsJSON(`"extra":{"nested":[1,"}"]}`)), htu: testHTU},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := newVerifier().Verify([]string{c.proof}, "GET", c.htu, c.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != ed.JKT() || p.Alg != jose.EdDSA || p.HTM != "GET" || p.JTI == "" {
				t.Fatalf("Verify = %+v", p)
			}
			if c.wantHTU != "" && p.HTU != c.wantHTU {
				t.Fatalf("HTU = %q, want %q", p.HTU, c.wantHTU)
			}
			if c.checkIssuedAt && !p.IssuedAt.Equal(c.wantIssuedAt) {
				t.Fatalf("IssuedAt = %v, want %v", p.IssuedAt, c.wantIssuedAt)
			}
		})
	}
}

func TestVerifyReplay(t *testing.T) {
	s := MustSigner(t, jose.ES256)
	v := newVerifier()
	p, err := s.Proof("POST", "https://as.example.com/token", ProofOptions{Now: testNow, JTI: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify([]string{p}, "POST", "https://as.example.com/token", ""); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err = v.Verify([]string{p}, "POST", "https://AS.example.com:443/token?again=1", "")
	if Reason(err) != ReasonReplay {
		t.Fatalf("second use: %v, want reason %s", err, ReasonReplay)
	}
	// The same jti for another URI is another proof.
	q, _ := s.Proof("POST", "https://as.example.com/revoke", ProofOptions{Now: testNow, JTI: "same"})
	if _, err := v.Verify([]string{q}, "POST", "https://as.example.com/revoke", ""); err != nil {
		t.Fatalf("same jti, other htu: %v", err)
	}
	// Once the window and skew have passed, the entry is gone, and the
	// proof is refused as too old instead.
	v.Now = func() time.Time { return testNow.Add(DefaultWindow + DefaultSkew + time.Second) }
	if _, err := v.Verify([]string{p}, "POST", "https://as.example.com/token", ""); Reason(err) != ReasonIssuedAt {
		t.Fatalf("after the window: %v, want reason %s", err, ReasonIssuedAt)
	}
}

func TestVerifyAlgAllowList(t *testing.T) {
	v := newVerifier()
	v.Algs = []jose.SignatureAlgorithm{jose.ES256, jose.HS256}
	ed := MustSigner(t, jose.EdDSA)
	p, _ := ed.Proof("GET", testHTU, ProofOptions{Now: testNow})
	_, err := v.Verify([]string{p}, "GET", testHTU, "")
	if Reason(err) != ReasonAlg || !strings.Contains(err.Error(), "use one of ES256") {
		t.Fatalf("EdDSA against [ES256 HS256]: %v", err)
	}
	if got := v.Algorithms(); len(got) != 1 || got[0] != "ES256" {
		t.Fatalf("Algorithms = %v: HS256 must never be offered", got)
	}
}

func TestVerifyNonce(t *testing.T) {
	s := MustSigner(t, jose.EdDSA)
	v := newVerifier()
	v.CheckNonce = func(n string) bool { return n == "n-2" }
	for _, c := range []struct {
		nonce string
		ok    bool
	}{{"", false}, {"n-1", false}, {"n-2", true}} {
		p, _ := s.Proof("POST", "https://as.example.com/token", ProofOptions{Now: testNow, Nonce: c.nonce})
		_, err := v.Verify([]string{p}, "POST", "https://as.example.com/token", "")
		if c.ok != (err == nil) {
			t.Fatalf("nonce %q: %v", c.nonce, err)
		}
		var e *Error
		if !c.ok && (!errors.As(err, &e) || e.Reason != ReasonNonce || e.Code() != CodeUseNonce) {
			t.Fatalf("nonce %q: %v, want use_dpop_nonce", c.nonce, err)
		}
	}
}

func TestVerifyMisconfigured(t *testing.T) {
	p, _ := MustSigner(t, jose.EdDSA).Proof("GET", testHTU, ProofOptions{Now: testNow})
	v := &Verifier{Now: func() time.Time { return testNow }}
	if _, err := v.Verify([]string{p}, "GET", testHTU, ""); err == nil || Reason(err) != "" {
		t.Fatalf("no replay cache: %v, want a plain error", err)
	}
	v = newVerifier()
	if _, err := v.Verify([]string{p}, "GET", "/relative", ""); err == nil || Reason(err) != "" {
		t.Fatalf("relative request URI: %v, want a plain error", err)
	}
}

func TestVerifyRequest(t *testing.T) {
	s := MustSigner(t, jose.ES384)
	p, _ := s.Proof("DELETE", "https://rs.example.com/v1/things/7", ProofOptions{Now: testNow, AccessToken: testToken})
	r := httptest.NewRequest("DELETE", "http://10.0.0.7:8080/v1/things/7?force=1", nil)
	r.Header.Set("Dpop", p) // header names are case-insensitive
	got, err := newVerifier().VerifyRequest(r, "https://rs.example.com"+r.URL.Path, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if got.JKT != s.JKT() || got.HTM != "DELETE" || got.Alg != jose.ES384 {
		t.Fatalf("VerifyRequest = %+v", got)
	}
}

func TestChallenge(t *testing.T) {
	v := newVerifier()
	if got, want := v.Challenge(nil), `DPoP algs="EdDSA ES256 ES384 PS256 RS256"`; got != want {
		t.Fatalf("Challenge(nil) = %s, want %s", got, want)
	}
	err := refuse(ReasonMethod, `DPoP proof htm is "G\"T", request is GET`)
	got := v.Challenge(err)
	if !strings.HasPrefix(got, `DPoP error="invalid_dpop_proof", error_description="DPoP proof htm is \"G\\\"T\"`) {
		t.Fatalf("Challenge = %s", got)
	}
	if got := v.Challenge(refuse(ReasonNonce, "no nonce")); !strings.HasPrefix(got, `DPoP error="use_dpop_nonce"`) {
		t.Fatalf("Challenge(nonce) = %s", got)
	}
}

// The verifier's EC path must accept a key whose coordinates have leading
// zero octets, sent at full length as RFC 7518 §6.2.1.2 requires.
func TestVerifyECLeadingZeroCoordinate(t *testing.T) {
	var key *ecdsa.PrivateKey
	for key == nil {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if p, _ := k.PublicKey.Bytes(); p[1] == 0 || p[33] == 0 {
			key = k
		}
	}
	s, err := NewSigner(key, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Proof("GET", testHTU, ProofOptions{Now: testNow})
	got, err := newVerifier().Verify([]string{p}, "GET", testHTU, "")
	if err != nil || got.JKT != s.JKT() {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}
