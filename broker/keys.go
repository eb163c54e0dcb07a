package broker

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyring holds the issuer's signing keys: one current, and retired ones
// still published until every token they signed has expired.
type keyring struct {
	mu      sync.RWMutex
	current *liveKey
	all     map[string]*liveKey // by kid, including current
}

type liveKey struct {
	meta   SigningKey
	priv   jose.JSONWebKey
	pub    jose.JSONWebKey
	signer jose.Signer // at+jwt signer
}

// SupportedAlgs are the token signing algorithms writ offers.
var SupportedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// DefaultAlg signs a new store's first key: ES256, which every common SSF
// receiver and resource-server JWT library accepts (several refuse EdDSA).
const DefaultAlg = jose.ES256

// CurrentSigningKey returns the metadata of the key that signs now
// (without private members).
func (s *Service) CurrentSigningKey() SigningKey {
	m := s.keys.signer().meta
	m.Private = nil
	return m
}

// GenerateSigningKey creates a key for alg with the RFC 7638 thumbprint as kid.
func GenerateSigningKey(alg jose.SignatureAlgorithm, rnd interface{ Read([]byte) (int, error) }, now time.Time) (SigningKey, error) {
	var priv crypto.PrivateKey
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rnd)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rnd)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rnd, 2048)
	default:
		return SigningKey{}, Errorf(EINVALID, "unsupported signing algorithm %q (want ES256, EdDSA or RS256)", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return SigningKey{}, fmt.Errorf("thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	b, err := jwk.MarshalJSON()
	if err != nil {
		return SigningKey{}, fmt.Errorf("encode key: %w", err)
	}
	return SigningKey{ID: jwk.KeyID, Alg: string(alg), Private: b, CreatedAt: now.UTC()}, nil
}

func newLiveKey(k SigningKey) (*liveKey, error) {
	var priv jose.JSONWebKey
	if err := json.Unmarshal(k.Private, &priv); err != nil {
		return nil, fmt.Errorf("decode signing key %s: %w", k.ID, err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Alg), Key: priv},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), k.ID),
	)
	if err != nil {
		return nil, fmt.Errorf("signer for key %s: %w", k.ID, err)
	}
	return &liveKey{meta: k, priv: priv, pub: priv.Public(), signer: signer}, nil
}

// loadKeys loads the keys from the store, creating the first one on a new store.
func (s *Service) loadKeys(ctx context.Context) (*keyring, error) {
	var keys []SigningKey
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if keys, err = tx.SigningKeys(); err != nil {
			return err
		}
		for _, k := range keys {
			if k.RetiredAt.IsZero() {
				return nil
			}
		}
		k, err := GenerateSigningKey(s.opts.Alg, s.rand, s.now())
		if err != nil {
			return err
		}
		keys = append(keys, k)
		return tx.PutSigningKey(k)
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return newKeyring(keys)
}

func newKeyring(keys []SigningKey) (*keyring, error) {
	kr := &keyring{all: make(map[string]*liveKey)}
	for _, k := range keys {
		lk, err := newLiveKey(k)
		if err != nil {
			return nil, err
		}
		kr.all[k.ID] = lk
		if k.RetiredAt.IsZero() && (kr.current == nil || k.CreatedAt.After(kr.current.meta.CreatedAt)) {
			kr.current = lk
		}
	}
	if kr.current == nil {
		return nil, fmt.Errorf("no current signing key")
	}
	return kr, nil
}

func (kr *keyring) signer() *liveKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.current
}

func (kr *keyring) key(kid string) (*liveKey, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	k, ok := kr.all[kid]
	return k, ok
}

// JWKS returns the public keys: the current one and retired ones still published.
func (s *Service) JWKS() jose.JSONWebKeySet {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.keys.current.pub}}
	for id, k := range s.keys.all {
		if id != s.keys.current.meta.ID {
			set.Keys = append(set.Keys, k.pub)
		}
	}
	return set
}

// SigningKeys returns the metadata of every key (without private members).
func (s *Service) SigningKeys() []SigningKey {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	out := make([]SigningKey, 0, len(s.keys.all))
	for _, k := range s.keys.all {
		m := k.meta
		m.Private = nil
		out = append(out, m)
	}
	return out
}

// RotateKeys makes a new key of alg current (alg "" keeps the current
// algorithm) and retires the old one: it stays in the JWKS until every
// token it signed has expired plus the retention margin, then is removed.
func (s *Service) RotateKeys(ctx context.Context, op Operator, alg jose.SignatureAlgorithm) (SigningKey, error) {
	old := s.keys.signer()
	if alg == "" {
		alg = jose.SignatureAlgorithm(old.meta.Alg)
	}
	now := s.now().UTC()
	k, err := GenerateSigningKey(alg, s.rand, now)
	if err != nil {
		return SigningKey{}, err
	}
	retired := old.meta
	retired.RetiredAt = now
	retired.RemoveAt = now.Add(s.cfg.Limits.MaxTTL + s.opts.KeyRetention)
	err = s.store.Update(ctx, func(tx Tx) error {
		if err := tx.PutSigningKey(retired); err != nil {
			return err
		}
		if err := tx.PutSigningKey(k); err != nil {
			return err
		}
		e := s.audit(AuditKeyRotated, operatorActor(op), &op, fmt.Sprintf("signing key %s (%s) replaces %s", k.ID, k.Alg, retired.ID))
		return tx.AppendAudit(e)
	})
	if err != nil {
		return SigningKey{}, fmt.Errorf("rotate keys: %w", err)
	}
	lk, err := newLiveKey(k)
	if err != nil {
		return SigningKey{}, err
	}
	s.keys.mu.Lock()
	s.keys.all[old.meta.ID].meta = retired
	s.keys.all[k.ID] = lk
	s.keys.current = lk
	s.keys.mu.Unlock()
	s.publish(Event{Kind: EventKeysRotated, At: now})
	out := k
	out.Private = nil
	return out, nil
}

// pruneKeys removes retired keys whose tokens have all expired.
func (s *Service) pruneKeys(ctx context.Context) error {
	now := s.now()
	var gone []string
	s.keys.mu.RLock()
	for id, k := range s.keys.all {
		if !k.meta.RemoveAt.IsZero() && now.After(k.meta.RemoveAt) {
			gone = append(gone, id)
		}
	}
	s.keys.mu.RUnlock()
	if len(gone) == 0 {
		return nil
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		for _, id := range gone {
			if err := tx.DeleteSigningKey(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune retired keys: %w", err)
	}
	s.keys.mu.Lock()
	for _, id := range gone {
		delete(s.keys.all, id)
	}
	s.keys.mu.Unlock()
	return nil
}

// Sign signs claims as a JWT with the current key and the given typ (for
// SETs and ID tokens, which are not at+jwt). Subpackages use it so every
// JWT writ emits is verifiable with the JWKS.
func (s *Service) Sign(typ string, claims any) (string, error) {
	k := s.keys.signer()
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	signer := k.signer
	if typ != "at+jwt" {
		signer, err = jose.NewSigner(
			jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.meta.Alg), Key: k.priv},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), k.meta.ID),
		)
		if err != nil {
			return "", fmt.Errorf("signer: %w", err)
		}
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}
