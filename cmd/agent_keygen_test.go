package cmd

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/config"
)

// The block keygen prints is pasted into writ.yaml as it is: it must load.
func TestKeygenBlockLoadsAsPrinted(t *testing.T) {
	k, err := agent.GenerateKey("release-bot", jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(k.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("writ.yaml", []byte(keygenBlock("release-bot", string(pub))))
	if err != nil {
		t.Fatalf("the printed block does not load: %v\n%s", err, keygenBlock("release-bot", string(pub)))
	}
	a, ok := cfg.Agent("release-bot")
	if !ok || len(a.Keys) != 1 || a.Keys[0].KeyID != k.PublicJWK().KeyID {
		t.Fatalf("agent %+v", a)
	}
}
