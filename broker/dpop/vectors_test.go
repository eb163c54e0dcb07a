package dpop

import (
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Known-answer vectors from RFC 9449 and RFC 7638 (STANDARDS.md §9). The
// proofs are copied from RFC 9449 with its RFC 8792 line wrapping undone:
// one Go string per wrapped line.

// rfc9449TokenProof is Figure 5 (§5): the token request proof.
const rfc9449TokenProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
	"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
	"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
	"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj" +
	"oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia" +
	"WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg" +
	"4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"

// rfc9449RefreshProof is Figure 7 (§5): the refresh token request proof.
const rfc9449RefreshProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
	"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
	"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
	"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj" +
	"oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia" +
	"WF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5Qs" +
	"GSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA"

// rfc9449ResourceProof is Figure 13 (§7.1): the protected resource proof,
// with ath of rfc9449AccessToken.
const rfc9449ResourceProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
	"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR" +
	"nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE" +
	"QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj" +
	"oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0Z" +
	"WRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNF" +
	"c05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71E" +
	"OptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"

const (
	rfc9449AccessToken = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU" // Figure 6
	rfc9449JKT         = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" // Figure 9
	rfc9449ATH         = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" // Figure 14
	rfc9449JWK         = `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",` +
		`"y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}` // Figure 4

	// RFC 7638 §3.1.
	rfc7638JWK = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4` +
		`cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt` +
		`7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS` +
		`D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK` +
		`gw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestThumbprintVectors(t *testing.T) {
	for _, tc := range []struct{ name, jwk, want string }{
		{"RFC 9449 example EC key", rfc9449JWK, rfc9449JKT},
		{"RFC 7638 section 3.1 RSA key", rfc7638JWK, rfc7638Thumbprint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k jose.JSONWebKey
			if err := json.Unmarshal([]byte(tc.jwk), &k); err != nil {
				t.Fatal(err)
			}
			got, err := Thumbprint(&k)
			if err != nil || got != tc.want {
				t.Fatalf("Thumbprint = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The verifier computes thumbprints from the members as sent, not through
// go-jose: check it against the same vectors.
func TestProofKeyThumbprintVectors(t *testing.T) {
	for _, tc := range []struct {
		jwk, want string
		alg       string
	}{
		{rfc9449JWK, rfc9449JKT, "ES256"},
		{rfc7638JWK, rfc7638Thumbprint, "RS256"},
	} {
		_, jkt, err := parseProofKey([]byte(tc.jwk), specFor(tc.alg))
		if err != nil || jkt != tc.want {
			t.Errorf("parseProofKey(%s) jkt = %q, %v; want %q", tc.alg, jkt, err, tc.want)
		}
	}
}

func TestAccessTokenHashVector(t *testing.T) {
	if got := AccessTokenHash(rfc9449AccessToken); got != rfc9449ATH {
		t.Fatalf("AccessTokenHash = %q, want %q", got, rfc9449ATH)
	}
}

func TestRFC9449Proofs(t *testing.T) {
	for _, tc := range []struct {
		name, proof, htm, htu, token string
		iat                          int64
		jti                          string
	}{
		{"token request (Figure 5)", rfc9449TokenProof, "POST", "https://server.example.com/token", "", 1562262616, "-BwC3ESc6acc2lTc"},
		{"refresh request (Figure 7)", rfc9449RefreshProof, "POST", "https://server.example.com/token", "", 1562265296, "-BwC3ESc6acc2lTc"},
		{"resource request (Figure 13)", rfc9449ResourceProof, "GET", "https://resource.example.org/protectedresource", rfc9449AccessToken, 1562262618, "e1j3V_bKic8-LAEB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Now: func() time.Time { return time.Unix(tc.iat, 0) }, Replay: NewReplayCache(0)}
			p, err := v.Verify([]string{tc.proof}, tc.htm, tc.htu, tc.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Proof{JKT: rfc9449JKT, JTI: tc.jti, HTM: tc.htm, HTU: tc.htu, IssuedAt: time.Unix(tc.iat, 0), Alg: jose.ES256}
			if *p != want {
				t.Fatalf("Verify = %+v, want %+v", *p, want)
			}
			// The same proof again is a replay.
			if _, err := v.Verify([]string{tc.proof}, tc.htm, tc.htu, tc.token); Reason(err) != ReasonReplay {
				t.Fatalf("second Verify: %v, want reason %s", err, ReasonReplay)
			}
			// A minute and a bit later it is too old.
			late := &Verifier{Now: func() time.Time { return time.Unix(tc.iat+61, 0) }, Replay: NewReplayCache(0)}
			if _, err := late.Verify([]string{tc.proof}, tc.htm, tc.htu, tc.token); Reason(err) != ReasonIssuedAt {
				t.Fatalf("late Verify: %v, want reason %s", err, ReasonIssuedAt)
			}
		})
	}
}
