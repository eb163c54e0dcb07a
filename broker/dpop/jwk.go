package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
)

// RSA modulus bounds: RFC 7518 §3.3 requires at least 2048 bits; the upper
// bound caps the work an attacker can ask of us, as go-jose's default does.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

var b64 = base64.RawURLEncoding.Strict()

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of k, base64url
// without padding: the value of cnf.jkt and dpop_jkt. A private key gives
// the thumbprint of its public half.
func Thumbprint(k *jose.JSONWebKey) (string, error) {
	if k == nil || k.Key == nil {
		return "", errors.New("dpop: thumbprint of an empty JWK")
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return b64.EncodeToString(sum), nil
}

// AccessTokenHash returns the ath claim for token (RFC 9449 §4.2):
// base64url of the SHA-256 of its ASCII octets.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

// algSpec is what each supported alg demands of its key and signature.
type algSpec struct {
	alg   jose.SignatureAlgorithm
	kty   string
	crv   string         // OKP and EC
	curve elliptic.Curve // EC
	size  int            // EC coordinate octets
	hash  crypto.Hash    // zero for EdDSA, which hashes internally
	pss   bool
}

var specs = [...]algSpec{
	{alg: jose.EdDSA, kty: "OKP", crv: "Ed25519"},
	{alg: jose.ES256, kty: "EC", crv: "P-256", curve: elliptic.P256(), size: 32, hash: crypto.SHA256},
	{alg: jose.ES384, kty: "EC", crv: "P-384", curve: elliptic.P384(), size: 48, hash: crypto.SHA384},
	{alg: jose.PS256, kty: "RSA", hash: crypto.SHA256, pss: true},
	{alg: jose.RS256, kty: "RSA", hash: crypto.SHA256},
}

func specFor(alg string) *algSpec {
	for i := range specs {
		if string(specs[i].alg) == alg {
			return &specs[i]
		}
	}
	return nil
}

// Members of a JWK that only a private (or symmetric) key has
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
func isPrivateMember(name string) bool {
	switch name {
	case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
		return true
	}
	return false
}

// jwkMembers are the members of an embedded jwk that the check reads.
type jwkMembers struct {
	kty, crv, x, y, n, e, alg []byte
}

// parseProofKey reads the jwk header parameter of a proof signed with
// spec.alg: a public key of the matching type, in its minimal encoding.
// It returns the key and its RFC 7638 thumbprint, computed from the
// members as sent, which the strict checks make equal to the canonical ones.
func parseProofKey(raw []byte, spec *algSpec) (crypto.PublicKey, string, *Error) {
	var m jwkMembers
	var mask uint32
	err := eachMember(raw, func(name, value []byte) error {
		var dst *[]byte
		var bit uint32
		switch string(name) {
		case "kty":
			dst, bit = &m.kty, 1
		case "crv":
			dst, bit = &m.crv, 2
		case "x":
			dst, bit = &m.x, 4
		case "y":
			dst, bit = &m.y, 8
		case "n":
			dst, bit = &m.n, 16
		case "e":
			dst, bit = &m.e, 32
		case "alg":
			dst, bit = &m.alg, 64
		default:
			if isPrivateMember(string(name)) {
				return refuse(ReasonKey, "DPoP proof jwk contains the private member %q; send only the public key", name)
			}
			return nil
		}
		if err := seen(&mask, bit); err != nil {
			return fmt.Errorf("%w %q", err, name)
		}
		s, err := unquote(value)
		if err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
		*dst = s
		return nil
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, "", e
		}
		return nil, "", &Error{Reason: ReasonKey, Msg: "DPoP proof jwk is not a valid JWK: " + err.Error(), Err: err}
	}
	if m.kty == nil {
		return nil, "", refuse(ReasonKey, "DPoP proof jwk has no kty")
	}
	if string(m.kty) != spec.kty {
		return nil, "", refuse(ReasonKey, "DPoP proof jwk kty is %s, alg %s needs %s", show(string(m.kty)), spec.alg, spec.kty)
	}
	if m.alg != nil && string(m.alg) != string(spec.alg) {
		return nil, "", refuse(ReasonKey, "DPoP proof jwk alg is %s, header alg is %s", show(string(m.alg)), spec.alg)
	}
	var canon [1024]byte // RFC 7638 input; a 4096-bit RSA key needs ~720 bytes
	var in []byte
	var pub crypto.PublicKey
	switch spec.kty {
	case "OKP":
		if string(m.crv) != spec.crv {
			return nil, "", refuse(ReasonKey, "DPoP proof jwk crv is %s, alg %s needs %s", show(string(m.crv)), spec.alg, spec.crv)
		}
		var x [ed25519.PublicKeySize + 3]byte
		xb, ok := decodeB64(x[:], m.x)
		if !ok || len(xb) != ed25519.PublicKeySize {
			return nil, "", refuse(ReasonKey, "DPoP proof jwk x is not a 32-octet Ed25519 key in base64url")
		}
		if !ed25519KeyUsable(xb) {
			return nil, "", refuse(ReasonKey, "DPoP proof jwk x is a small-order or non-canonical Ed25519 point")
		}
		pub = ed25519.PublicKey(append([]byte(nil), xb...))
		in = append(canon[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
		in = append(append(in, m.x...), `"}`...)
	case "EC":
		if string(m.crv) != spec.crv {
			return nil, "", refuse(ReasonKey, "DPoP proof jwk crv is %s, alg %s needs %s", show(string(m.crv)), spec.alg, spec.crv)
		}
		var point [1 + 2*48 + 6]byte
		point[0] = 4 // SEC 1 uncompressed
		xb, okx := decodeB64(point[1:], m.x)
		yb, oky := decodeB64(point[1+len(xb):], m.y)
		if !okx || !oky || len(xb) != spec.size || len(yb) != spec.size {
			return nil, "", refuse(ReasonKey, "DPoP proof jwk x and y must be %d-octet %s coordinates in base64url", spec.size, spec.crv)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(spec.curve, point[:1+2*spec.size])
		if err != nil {
			return nil, "", &Error{Reason: ReasonKey, Msg: "DPoP proof jwk is not a point on " + spec.crv, Err: err}
		}
		pub = k
		in = append(canon[:0], `{"crv":"`...)
		in = append(append(in, spec.crv...), `","kty":"EC","x":"`...)
		in = append(append(in, m.x...), `","y":"`...)
		in = append(append(in, m.y...), `"}`...)
	case "RSA":
		k, e := rsaKey(m.n, m.e)
		if e != nil {
			return nil, "", e
		}
		pub = k
		in = append(canon[:0], `{"e":"`...)
		in = append(append(in, m.e...), `","kty":"RSA","n":"`...)
		in = append(append(in, m.n...), `"}`...)
	}
	sum := sha256.Sum256(in)
	return pub, b64.EncodeToString(sum[:]), nil
}

func rsaKey(nRaw, eRaw []byte) (*rsa.PublicKey, *Error) {
	var nBuf [maxRSABits/8 + 3]byte
	n, ok := decodeB64(nBuf[:], nRaw)
	if !ok || len(n) == 0 {
		return nil, refuse(ReasonKey, "DPoP proof jwk n is not base64url of at most %d bits", maxRSABits)
	}
	if n[0] == 0 {
		return nil, refuse(ReasonKey, "DPoP proof jwk n has a leading zero octet; RFC 7518 section 6.3.1.1 requires the minimal encoding")
	}
	bits := (len(n)-1)*8 + bitLen(n[0])
	if bits < minRSABits || bits > maxRSABits {
		return nil, refuse(ReasonKey, "DPoP proof jwk is a %d-bit RSA key; %d to %d bits are accepted", bits, minRSABits, maxRSABits)
	}
	var eBuf [8]byte
	eb, ok := decodeB64(eBuf[:], eRaw)
	if !ok || len(eb) == 0 || len(eb) > 4 || eb[0] == 0 {
		return nil, refuse(ReasonKey, "DPoP proof jwk e is not a minimal base64url exponent")
	}
	e := 0
	for _, c := range eb {
		e = e<<8 | int(c)
	}
	if e < 3 || e&1 == 0 || e > 1<<31-1 {
		return nil, refuse(ReasonKey, "DPoP proof jwk e is %d, not an odd exponent of at least 3", e)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: e}, nil
}

func bitLen(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

// decodeB64 decodes unpadded base64url from src into dst, refusing the
// characters the standard decoder would skip (CR, LF) or allow ('='), so
// each key has exactly one spelling and the thumbprint one input.
func decodeB64(dst, src []byte) ([]byte, bool) {
	if len(src) == 0 || b64.DecodedLen(len(src)) > len(dst) || !isB64(src) {
		return nil, false
	}
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

func isB64(s []byte) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// publicJWK returns the RFC 7638 canonical JSON of pub, which is also a
// valid public JWK for the proof header, and the spec it signs with.
func publicJWK(pub crypto.PublicKey, alg jose.SignatureAlgorithm) (string, *algSpec, error) {
	spec := specFor(string(alg))
	if spec == nil {
		return "", nil, fmt.Errorf("dpop: alg %q is not supported; use EdDSA, ES256, ES384, PS256 or RS256", alg)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if spec.kty != "OKP" || len(k) != ed25519.PublicKeySize {
			break
		}
		return `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k) + `"}`, spec, nil
	case *ecdsa.PublicKey:
		if spec.kty != "EC" || k.Curve != spec.curve {
			break
		}
		p, err := k.Bytes()
		if err != nil {
			return "", nil, fmt.Errorf("dpop: encode EC key: %w", err)
		}
		x, y := p[1:1+spec.size], p[1+spec.size:]
		return `{"crv":"` + spec.crv + `","kty":"EC","x":"` + b64.EncodeToString(x) +
			`","y":"` + b64.EncodeToString(y) + `"}`, spec, nil
	case *rsa.PublicKey:
		if spec.kty != "RSA" {
			break
		}
		if b := k.N.BitLen(); b < minRSABits || b > maxRSABits {
			return "", nil, fmt.Errorf("dpop: %d-bit RSA key; %d to %d bits are accepted", b, minRSABits, maxRSABits)
		}
		e := big.NewInt(int64(k.E)).Bytes()
		return `{"e":"` + b64.EncodeToString(e) + `","kty":"RSA","n":"` + b64.EncodeToString(k.N.Bytes()) + `"}`, spec, nil
	}
	return "", nil, fmt.Errorf("dpop: a %T key cannot sign %s", pub, alg)
}
