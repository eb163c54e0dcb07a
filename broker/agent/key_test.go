package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/dpop"
)

func TestKeyFile(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := GenerateKey("release-bot", alg)
			if err != nil {
				t.Fatal(err)
			}
			k.Issuer = "https://writ.example"
			path := filepath.Join(t.TempDir(), "release-bot.key.json")
			if err := k.Save(path); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
			}
			if err := k.Save(path); err == nil || !strings.Contains(err.Error(), "not overwriting") {
				t.Fatalf("second save: %v, want a refusal to overwrite", err)
			}
			got, err := LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.AgentID != "release-bot" || got.Issuer != "https://writ.example" || got.JWK.KeyID != k.JWK.KeyID {
				t.Fatalf("loaded %+v", got)
			}
			tp, _ := dpop.Thumbprint(&k.JWK)
			if k.JWK.KeyID != tp {
				t.Errorf("kid %s is not the RFC 7638 thumbprint %s", k.JWK.KeyID, tp)
			}
			pub := k.PublicJWK()
			b, _ := json.Marshal(pub)
			if !pub.IsPublic() || strings.Contains(string(b), `"d"`) {
				t.Fatalf("public JWK carries private material: %s", b)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("world-readable key file: %v, want a refusal", err)
			}
		})
	}
}

func TestKeyFileRefusals(t *testing.T) {
	k, _ := GenerateKey("a", jose.EdDSA)
	pub, _ := k.PublicJWK().MarshalJSON()
	for name, content := range map[string]string{
		"not JSON":        "agent: x",
		"no agent id":     `{"key":` + string(pub) + `}`,
		"public key only": `{"agent_id":"a","key":` + string(pub) + `}`,
		"no key":          `{"agent_id":"a"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKey(path); err == nil {
				t.Fatal("loaded")
			}
		})
	}
	if _, err := GenerateKey("", jose.EdDSA); err == nil {
		t.Error("a key without an agent id")
	}
	if _, err := GenerateKey("a", jose.HS256); err == nil {
		t.Error("an HS256 key")
	}
}
