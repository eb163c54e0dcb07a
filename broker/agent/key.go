package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/dpop"
)

// Key is an agent's identity: its client id at writ and the private key
// its client assertions are signed with. The public half goes into writ's
// configuration (agents[].keys).
type Key struct {
	// AgentID is the agent's id in writ's configuration: the client_id.
	AgentID string
	// Issuer, when set, is the writ URL the key is for, so tools need not
	// be told it again.
	Issuer string
	// JWK is the private key, with kid (its RFC 7638 thumbprint) and alg.
	JWK jose.JSONWebKey
	// CreatedAt is when the key was made.
	CreatedAt time.Time
}

// keyFile is the JSON of a key file.
type keyFile struct {
	AgentID   string          `json:"agent_id"`
	Issuer    string          `json:"issuer,omitempty"`
	Key       json.RawMessage `json:"key"`
	CreatedAt time.Time       `json:"created_at,omitzero"`
}

// GenerateKey makes a new key for agentID: Ed25519 (EdDSA, the default)
// or P-256 (ES256).
func GenerateKey(agentID string, alg jose.SignatureAlgorithm) (*Key, error) {
	if agentID == "" {
		return nil, errors.New("agent: the agent id is required")
	}
	var priv crypto.PrivateKey
	var err error
	switch alg {
	case "", jose.EdDSA:
		alg = jose.EdDSA
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("agent: algorithm %q is not offered; use EdDSA or ES256", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: generate %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	if jwk.KeyID, err = dpop.Thumbprint(&jwk); err != nil {
		return nil, err
	}
	return &Key{AgentID: agentID, JWK: jwk, CreatedAt: time.Now().UTC().Truncate(time.Second)}, nil
}

// PublicJWK returns the public key to register in writ's configuration.
func (k *Key) PublicJWK() jose.JSONWebKey { return k.JWK.Public() }

// signer returns the key as a crypto.Signer with its algorithm.
func (k *Key) signer() (crypto.Signer, jose.SignatureAlgorithm, error) {
	s, ok := k.JWK.Key.(crypto.Signer)
	if !ok || !k.JWK.Valid() || k.JWK.IsPublic() {
		return nil, "", errors.New("agent: the key is not a private signing key")
	}
	alg := jose.SignatureAlgorithm(k.JWK.Algorithm)
	if alg == "" {
		switch s.(type) {
		case ed25519.PrivateKey:
			alg = jose.EdDSA
		case *ecdsa.PrivateKey:
			alg = jose.ES256
		default:
			return nil, "", errors.New("agent: the key has no alg; set it to EdDSA or ES256")
		}
	}
	return s, alg, nil
}

// MarshalJSON encodes the key file: {"agent_id", "issuer", "key", "created_at"}.
func (k *Key) MarshalJSON() ([]byte, error) {
	jwk, err := k.JWK.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("agent: encode key: %w", err)
	}
	return json.Marshal(keyFile{AgentID: k.AgentID, Issuer: k.Issuer, Key: jwk, CreatedAt: k.CreatedAt})
}

// UnmarshalJSON decodes a key file.
func (k *Key) UnmarshalJSON(b []byte) error {
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("agent: key file is not JSON: %w", err)
	}
	if f.AgentID == "" {
		return errors.New("agent: key file has no agent_id")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(f.Key); err != nil {
		return fmt.Errorf("agent: key file's key is not a JWK: %w", err)
	}
	if jwk.IsPublic() {
		return errors.New("agent: key file holds a public key; it needs the private key")
	}
	*k = Key{AgentID: f.AgentID, Issuer: f.Issuer, JWK: jwk, CreatedAt: f.CreatedAt}
	if _, _, err := k.signer(); err != nil {
		return err
	}
	return nil
}

// Save writes the key file at path with mode 0600. It never overwrites:
// replacing a key locks the agent out until the configuration changes.
func (k *Key) Save(path string) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("key file %s exists; not overwriting it", path)
		}
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// LoadKey reads a key file. Like ssh, it refuses a file that others may
// read: a private key shared is an identity shared.
func LoadKey(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable by others (mode %04o); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	var k Key
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return &k, nil
}
