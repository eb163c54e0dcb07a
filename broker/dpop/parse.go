package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The parts of a proof: compact serialisation, protected header, claims
// set and signature, each read strictly.

// splitCompact finds the two dots of a compact JWS whose parts are
// base64url, without padding, spaces or line breaks. Header and payload
// must be non-empty; an empty signature (as alg none has) gets as far as
// the alg check, which then names the problem.
func splitCompact(s string) (dot1, dot2 int, ok bool) {
	dot1, dot2 = -1, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_':
		case c == '.' && dot1 < 0:
			dot1 = i
		case c == '.' && dot2 < 0:
			dot2 = i
		default:
			return 0, 0, false
		}
	}
	ok = dot1 > 0 && dot2 > dot1+1
	return dot1, dot2, ok
}

func decodePart(dst, part []byte) ([]byte, error) {
	n, err := b64.Decode(dst, part)
	return dst[:n], err
}

// readHeader checks the protected header: typ, alg on the allow-list, a
// jwk object, and no crit.
func (v *Verifier) readHeader(hdr []byte) (*algSpec, []byte, *Error) {
	var typ, alg, jwk []byte
	var mask uint32
	err := eachMember(hdr, func(name, value []byte) error {
		var err error
		switch string(name) {
		case "typ":
			if err = seen(&mask, 1); err == nil {
				typ, err = unquote(value)
			}
		case "alg":
			if err = seen(&mask, 2); err == nil {
				alg, err = unquote(value)
			}
		case "jwk":
			if err = seen(&mask, 4); err == nil {
				if value[0] != '{' {
					return refuse(ReasonKey, "DPoP proof jwk is not a JSON object")
				}
				jwk = value
			}
		case "crit":
			return refuse(ReasonMalformed, "DPoP proof header has crit; no JWS extensions are understood")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, nil, e
		}
		return nil, nil, &Error{Reason: ReasonMalformed, Msg: "DPoP proof header is not a valid JOSE header: " + err.Error(), Err: err}
	}
	if string(typ) != "dpop+jwt" {
		if typ == nil {
			return nil, nil, refuse(ReasonType, "DPoP proof has no typ; it must be dpop+jwt")
		}
		return nil, nil, refuse(ReasonType, "DPoP proof typ is %s; it must be dpop+jwt", show(string(typ)))
	}
	spec := v.allowed(alg)
	if spec == nil {
		if alg == nil {
			return nil, nil, refuse(ReasonAlg, "DPoP proof has no alg")
		}
		return nil, nil, refuse(ReasonAlg, "DPoP proof alg %s is not accepted; use one of %s", show(string(alg)), strings.Join(v.Algorithms(), ", "))
	}
	if jwk == nil {
		return nil, nil, refuse(ReasonKey, "DPoP proof has no jwk header")
	}
	return spec, jwk, nil
}

// claims are the members of a proof's claims set that the checks read.
type claims struct {
	jti, htm, htu, ath, nonce []byte
	iatSec, iatNsec           int64
}

func readClaims(payload []byte) (*claims, *Error) {
	var c claims
	var mask uint32
	err := eachMember(payload, func(name, value []byte) error {
		var dst *[]byte
		var bit uint32
		switch string(name) {
		case "jti":
			dst, bit = &c.jti, 1
		case "htm":
			dst, bit = &c.htm, 2
		case "htu":
			dst, bit = &c.htu, 4
		case "ath":
			dst, bit = &c.ath, 8
		case "nonce":
			dst, bit = &c.nonce, 16
		case "iat":
			if err := seen(&mask, 32); err != nil {
				return fmt.Errorf("%w iat", err)
			}
			var ok bool
			if c.iatSec, c.iatNsec, ok = numericDate(value); !ok {
				return refuse(ReasonClaims, "DPoP proof iat is not a number of seconds")
			}
			return nil
		default:
			return nil
		}
		if err := seen(&mask, bit); err != nil {
			return fmt.Errorf("%w %s", err, name)
		}
		s, err := unquote(value)
		if err != nil {
			return refuse(ReasonClaims, "DPoP proof %s is not a string", name)
		}
		*dst = s
		return nil
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, &Error{Reason: ReasonMalformed, Msg: "DPoP proof claims are not a valid JSON object: " + err.Error(), Err: err}
	}
	for _, req := range []struct {
		name string
		ok   bool
	}{{"jti", len(c.jti) > 0}, {"htm", len(c.htm) > 0}, {"htu", len(c.htu) > 0}, {"iat", mask&32 != 0}} {
		if !req.ok {
			return nil, refuse(ReasonClaims, "DPoP proof has no %s claim", req.name)
		}
	}
	if len(c.jti) > maxJTI {
		return nil, refuse(ReasonClaims, "DPoP proof jti is %d bytes; the limit is %d", len(c.jti), maxJTI)
	}
	return &c, nil
}

// verifySignature checks sig over the JWS signing input with the key of the
// proof, in the octet formats of RFC 7518 §3.4 (ECDSA r ‖ s) and RFC 8037.
func verifySignature(spec *algSpec, pub any, input, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return spec.kty == "OKP" && ed25519.Verify(k, input, sig)
	case *ecdsa.PublicKey:
		if spec.kty != "EC" || len(sig) != 2*spec.size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:spec.size])
		s := new(big.Int).SetBytes(sig[spec.size:])
		if spec.size == 48 {
			d := sha512.Sum384(input)
			return ecdsa.Verify(k, d[:], r, s)
		}
		d := sha256.Sum256(input)
		return ecdsa.Verify(k, d[:], r, s)
	case *rsa.PublicKey:
		if spec.kty != "RSA" {
			return false
		}
		d := sha256.Sum256(input)
		if spec.pss {
			// RFC 7518 §3.5: the salt is as long as the hash.
			return rsa.VerifyPSS(k, spec.hash, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k, spec.hash, d[:], sig) == nil
	}
	return false
}
