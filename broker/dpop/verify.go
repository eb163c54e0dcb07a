package dpop

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of a Verifier.
const (
	DefaultWindow = 60 * time.Second
	DefaultSkew   = 5 * time.Second
	// MaxProofSize bounds the DPoP header value; a proof with a 4096-bit RSA
	// key is about 2 KiB.
	MaxProofSize = 8 << 10
	// maxJTI bounds the jti claim; 128 random bits are 22 characters.
	maxJTI = 256
)

// defaultAlgs are the algorithms a Verifier accepts when Algs is empty.
var defaultAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.PS256, jose.RS256}

// Verifier checks DPoP proofs (RFC 9449 §4.3). Its fields are read-only once
// it is in use; it is then safe for concurrent use.
type Verifier struct {
	// Algs is the allow-list of JWS algorithms; empty means EdDSA, ES256,
	// ES384, PS256 and RS256, the asymmetric algorithms this package
	// implements. Others in the list (none, HS256, ...) are never accepted.
	Algs []jose.SignatureAlgorithm
	// Window is how old a proof's iat may be; zero means DefaultWindow.
	Window time.Duration
	// Skew is how far in the future iat may be, for clients whose clocks
	// run ahead; zero means DefaultSkew.
	Skew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replay remembers (jkt, htu, jti) for Window+Skew to refuse a second
	// use of a proof (RFC 9449 §11.1). Required: Verify fails without it.
	Replay *ReplayCache
	// CheckNonce, when set, says whether a proof's nonce claim ("" when
	// absent) is one the server issued and still accepts. A proof it turns
	// down is refused with ReasonNonce, which the caller answers with
	// use_dpop_nonce and a fresh DPoP-Nonce header (RFC 9449 §8, §9). It is
	// called only for proofs whose signature verified. Nil: no nonce needed.
	CheckNonce func(nonce string) bool
}

// Proof is what a verified proof establishes.
type Proof struct {
	JKT      string // RFC 7638 thumbprint of the proof's key: compare with cnf.jkt
	JTI      string
	HTM      string
	HTU      string // as the client sent it; it matched the request after normalisation
	IssuedAt time.Time
	Alg      jose.SignatureAlgorithm
}

// VerifyRequest checks the DPoP header of r. htu is the request's URI built
// from the server's configured public URL and r.URL.Path, never from Host or
// X-Forwarded-* headers; its query, if any, is ignored. accessToken is the
// token presented with the proof ("" at a token endpoint).
func (v *Verifier) VerifyRequest(r *http.Request, htu, accessToken string) (*Proof, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	return v.Verify(r.Header.Values("DPoP"), method, htu, accessToken)
}

// Verify checks the values of the DPoP header field of a request with
// method htm to htu, made with accessToken ("" when none; then ath is not
// checked). It returns an *Error with a Reason when the proof is refused,
// and a plain error only when the Verifier is misconfigured or htu is not
// an absolute http(s) URI.
func (v *Verifier) Verify(values []string, htm, htu, accessToken string) (*Proof, error) {
	return v.VerifyFor(values, htm, htu, accessToken, "")
}

// VerifyRequestFor is VerifyRequest for a request whose client is known
// (an authenticated client id, or the key its token is bound to): the
// proof counts against that client's replay quota instead of its own key's,
// so making new keys earns a client no more room.
func (v *Verifier) VerifyRequestFor(r *http.Request, htu, accessToken, client string) (*Proof, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	return v.VerifyFor(r.Header.Values("DPoP"), method, htu, accessToken, client)
}

// VerifyFor is Verify, counting the proof against client's replay quota
// ("" means the proof's own key). A client over its quota gets
// ReasonReplayQuota: answer 429 with Retry-After (ReplayRetryAfter).
func (v *Verifier) VerifyFor(values []string, htm, htu, accessToken, client string) (*Proof, error) {
	if v.Replay == nil {
		return nil, errors.New("dpop: Verifier.Replay is nil; a replay cache is required")
	}
	switch {
	case len(values) == 0:
		return nil, refuse(ReasonMissing, "request has no DPoP header")
	case len(values) > 1:
		return nil, refuse(ReasonMultiple, "request has %d DPoP headers; exactly one is allowed", len(values))
	}
	jws := strings.Trim(values[0], " \t")
	if jws == "" {
		return nil, refuse(ReasonMissing, "request has an empty DPoP header")
	}
	if len(jws) > MaxProofSize {
		return nil, refuse(ReasonMalformed, "DPoP proof is %d bytes; the limit is %d", len(jws), MaxProofSize)
	}
	dot1, dot2, ok := splitCompact(jws)
	if !ok {
		return nil, refuse(ReasonMalformed, "DPoP proof is not a compact JWS (three base64url parts)")
	}
	// One allocation holds the proof's octets (the signing input is a
	// prefix) and the three decoded parts.
	buf := make([]byte, len(jws)+b64.DecodedLen(dot1)+b64.DecodedLen(dot2-dot1-1)+b64.DecodedLen(len(jws)-dot2-1))
	raw, dec := buf[:len(jws)], buf[len(jws):]
	copy(raw, jws)
	hdr, err1 := decodePart(dec, raw[:dot1])
	payload, err2 := decodePart(dec[len(hdr):], raw[dot1+1:dot2])
	sig, err3 := decodePart(dec[len(hdr)+len(payload):], raw[dot2+1:])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, &Error{Reason: ReasonMalformed, Msg: "DPoP proof is not valid base64url", Err: err}
	}

	spec, jwk, e := v.readHeader(hdr)
	if e != nil {
		return nil, e
	}
	pub, jkt, e := parseProofKey(jwk, spec)
	if e != nil {
		return nil, e
	}
	c, e := readClaims(payload)
	if e != nil {
		return nil, e
	}

	if string(c.htm) != htm {
		return nil, refuse(ReasonMethod, "DPoP proof htm is %s, request is %s", show(string(c.htm)), show(htm))
	}
	claimHTU := string(c.htu)
	var scratch [512]byte
	want, err := appendHTU(scratch[:0], htu)
	if err != nil {
		return nil, fmt.Errorf("dpop: request URI %s %w", show(htu), err)
	}
	got, err := appendHTU(want[len(want):], claimHTU)
	if err != nil {
		return nil, &Error{Reason: ReasonURI, Msg: "DPoP proof htu " + show(claimHTU) + " " + err.Error(), Err: err}
	}
	if string(got) != string(want) {
		return nil, refuse(ReasonURI, "DPoP proof htu is %s, request is %s", show(claimHTU), show(string(want)))
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	window, skew := v.window(), v.skew()
	iat := time.Unix(c.iatSec, c.iatNsec)
	// Compare instants, not durations: now.Sub saturates for an iat
	// centuries away, and negating the minimum Duration is a no-op.
	if iat.Before(now.Add(-window)) {
		return nil, refuse(ReasonIssuedAt, "DPoP proof iat is %s old; the window is %s", now.Sub(iat).Round(time.Second), window)
	}
	if iat.After(now.Add(skew)) {
		return nil, refuse(ReasonIssuedAt, "DPoP proof iat is %s in the future; the allowed skew is %s", iat.Sub(now).Round(time.Second), skew)
	}
	if accessToken != "" {
		if c.ath == nil {
			return nil, refuse(ReasonTokenHash, "DPoP proof has no ath claim, but an access token was presented")
		}
		var want [43]byte
		sum := sha256.Sum256([]byte(accessToken))
		b64.Encode(want[:], sum[:])
		if string(c.ath) != string(want[:]) {
			return nil, refuse(ReasonTokenHash, "DPoP proof ath is not the hash of the presented access token")
		}
	}

	if !verifySignature(spec, pub, raw[:dot2], sig) {
		return nil, refuse(ReasonSignature, "DPoP proof signature does not verify with its jwk")
	}

	if v.CheckNonce != nil && !v.CheckNonce(string(c.nonce)) {
		if c.nonce == nil {
			return nil, refuse(ReasonNonce, "DPoP proof has no nonce; the server requires one")
		}
		return nil, refuse(ReasonNonce, "DPoP proof nonce is not one the server currently accepts")
	}

	key := replayKey(jkt, got, c.jti)
	if client == "" {
		client = jkt
	}
	if e := v.Replay.record(v.Replay.clientHash(client), key, now.Add(window+skew).UnixNano(), now.UnixNano()); e != nil {
		return nil, e
	}
	return &Proof{
		JKT:      jkt,
		JTI:      string(c.jti),
		HTM:      htm,
		HTU:      claimHTU,
		IssuedAt: iat,
		Alg:      spec.alg,
	}, nil
}

// ReplayRetryAfter is how long a client refused with ReasonReplayQuota
// should wait: at most this long, its oldest proof leaves the cache.
func (v *Verifier) ReplayRetryAfter() time.Duration { return v.window() + v.skew() }

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

func (v *Verifier) skew() time.Duration {
	if v.Skew > 0 {
		return v.Skew
	}
	return DefaultSkew
}

// allowed returns the spec of alg when the Verifier accepts it.
func (v *Verifier) allowed(alg []byte) *algSpec {
	algs := v.Algs
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	for _, a := range algs {
		if string(a) == string(alg) {
			return specFor(string(a))
		}
	}
	return nil
}

// Algorithms returns the accepted algorithms, for the algs parameter of a
// challenge and the dpop_signing_alg_values_supported metadata.
func (v *Verifier) Algorithms() []string {
	algs := v.Algs
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		if specFor(string(a)) != nil {
			out = append(out, string(a))
		}
	}
	return out
}

// Challenge returns the WWW-Authenticate value a resource server sends with
// its 401 (RFC 9449 §7.1): the error code and description of err, if it is
// an *Error, and the accepted algorithms.
func (v *Verifier) Challenge(err error) string {
	var b strings.Builder
	b.WriteString("DPoP ")
	if err != nil {
		code, desc := CodeInvalidProof, ""
		var e *Error
		if errors.As(err, &e) {
			code, desc = e.Code(), e.Msg
		}
		b.WriteString(`error="` + code + `", `)
		if desc != "" {
			b.WriteString(`error_description="`)
			for i := 0; i < len(desc); i++ {
				switch c := desc[i]; {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c >= ' ' && c < 0x7f:
					b.WriteByte(c)
				}
			}
			b.WriteString(`", `)
		}
	}
	b.WriteString(`algs="` + strings.Join(v.Algorithms(), " ") + `"`)
	return b.String()
}

// replayKey digests (jkt, normalised htu, jti): a fixed 16 bytes per entry
// keeps the cache's memory bounded and its maps free of pointers. A
// collision could only refuse a good proof, never admit a replay.
func replayKey(jkt string, htu, jti []byte) [16]byte {
	var scratch [512]byte
	b := append(scratch[:0], jkt...)
	b = append(append(b, 0), htu...)
	b = append(append(b, 0), jti...)
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}
