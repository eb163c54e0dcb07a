package dpop

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
)

// ProofOptions are the optional parts of a proof.
type ProofOptions struct {
	// AccessToken, when set, is hashed into the ath claim. Required when the
	// proof goes with a token to a resource server (RFC 9449 §7).
	AccessToken string
	// Nonce is the server's latest DPoP-Nonce, if it sent one.
	Nonce string
	// Now is the iat; zero means time.Now().
	Now time.Time
	// JTI is the proof's unique id; empty means 128 random bits.
	JTI string
}

// Signer makes DPoP proofs with one private key. The protected header and
// the thumbprint are computed once. It is safe for concurrent use.
type Signer struct {
	key    crypto.Signer
	spec   *algSpec
	header string // base64url of the protected header, the same for every proof
	jkt    string
}

// NewSigner returns a Signer for key and alg. key is a crypto.Signer whose
// public key is an ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
// (ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey, or a KMS or HSM
// key), or a *jose.JSONWebKey holding one. alg is EdDSA (Ed25519), ES256,
// ES384 (curves P-256, P-384), PS256 or RS256 (RSA of 2048 to 4096 bits).
func NewSigner(key any, alg jose.SignatureAlgorithm) (*Signer, error) {
	switch k := key.(type) {
	case *jose.JSONWebKey:
		if k == nil {
			return nil, errors.New("dpop: nil JWK")
		}
		key = k.Key
	case jose.JSONWebKey:
		key = k.Key
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dpop: a %T cannot sign proofs; pass a private key", key)
	}
	jwk, spec, err := publicJWK(signer.Public(), alg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(jwk)) // the jwk is in RFC 7638 canonical form
	header := `{"typ":"dpop+jwt","alg":"` + string(spec.alg) + `","jwk":` + jwk + `}`
	return &Signer{
		key:    signer,
		spec:   spec,
		header: b64.EncodeToString([]byte(header)),
		jkt:    b64.EncodeToString(sum[:]),
	}, nil
}

// NewProof makes one proof for a request with method htm to htu. Callers
// making many proofs with one key should keep a Signer instead.
func NewProof(key any, alg jose.SignatureAlgorithm, htm, htu string, opts ProofOptions) (string, error) {
	s, err := NewSigner(key, alg)
	if err != nil {
		return "", err
	}
	return s.Proof(htm, htu, opts)
}

// JKT returns the RFC 7638 thumbprint of the Signer's public key: the
// cnf.jkt of tokens bound to it.
func (s *Signer) JKT() string { return s.jkt }

// Alg returns the Signer's JWS algorithm.
func (s *Signer) Alg() jose.SignatureAlgorithm { return s.spec.alg }

// PublicJWK returns the Signer's public key as a JWK, e.g. to register it.
func (s *Signer) PublicJWK() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: s.key.Public(), KeyID: s.jkt, Algorithm: string(s.spec.alg), Use: "sig"}
}

// Proof makes a proof for a request with method htm to htu. The query and
// fragment of htu are left out, as RFC 9449 §4.2 requires.
func (s *Signer) Proof(htm, htu string, opts ProofOptions) (string, error) {
	if htm == "" || strings.ContainsAny(htm, " \t\r\n\"\\") {
		return "", fmt.Errorf("dpop: htm %s is not an HTTP method", show(htm))
	}
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	var scratch [256]byte
	if _, err := appendHTU(scratch[:0], htu); err != nil {
		return "", fmt.Errorf("dpop: htu %s %w", show(htu), err)
	}
	jti := opts.JTI
	if jti == "" {
		var r [16]byte
		_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
		jti = b64.EncodeToString(r[:])
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	claims := make([]byte, 0, 160+len(htu)+len(jti)+len(opts.Nonce))
	claims = append(claims, `{"jti":`...)
	claims, err := appendJSONString(claims, jti)
	if err == nil {
		claims = append(claims, `,"htm":`...)
		claims, err = appendJSONString(claims, htm)
	}
	if err == nil {
		claims = append(claims, `,"htu":`...)
		claims, err = appendJSONString(claims, htu)
	}
	if err != nil {
		return "", err
	}
	claims = strconv.AppendInt(append(claims, `,"iat":`...), now.Unix(), 10)
	if opts.AccessToken != "" {
		claims = append(append(append(claims, `,"ath":"`...), AccessTokenHash(opts.AccessToken)...), '"')
	}
	if opts.Nonce != "" {
		claims = append(claims, `,"nonce":`...)
		if claims, err = appendJSONString(claims, opts.Nonce); err != nil {
			return "", err
		}
	}
	claims = append(claims, '}')

	sigLen := 64 + 2*s.spec.size + 512 // enough base64 for any supported signature
	out := make([]byte, 0, len(s.header)+1+b64.EncodedLen(len(claims))+1+sigLen)
	out = append(append(out, s.header...), '.')
	out = b64.AppendEncode(out, claims)
	sig, err := s.sign(out)
	if err != nil {
		return "", err
	}
	out = b64.AppendEncode(append(out, '.'), sig)
	return string(out), nil
}

// sign returns the JWS signature over input in the octets RFC 7518 defines:
// r ‖ s for ECDSA, not the ASN.1 a crypto.Signer returns.
func (s *Signer) sign(input []byte) ([]byte, error) {
	spec := s.spec
	if spec.kty == "OKP" {
		sig, err := s.key.Sign(rand.Reader, input, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("dpop: sign proof: %w", err)
		}
		return sig, nil
	}
	h := spec.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = spec.hash
	if spec.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash}
	}
	sig, err := s.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: sign proof: %w", err)
	}
	if spec.kty != "EC" {
		return sig, nil
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("dpop: sign proof: the signer returned a malformed ECDSA signature")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*spec.size || rs.S.BitLen() > 8*spec.size {
		return nil, errors.New("dpop: sign proof: the signer returned an out-of-range ECDSA signature")
	}
	raw := make([]byte, 2*spec.size)
	rs.R.FillBytes(raw[:spec.size])
	rs.S.FillBytes(raw[spec.size:])
	return raw, nil
}

// appendJSONString appends s as a JSON string. s must be valid UTF-8.
func appendJSONString(dst []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return dst, fmt.Errorf("dpop: %s is not valid UTF-8", show(s))
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), nil
}
