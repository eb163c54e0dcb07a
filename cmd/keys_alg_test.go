package cmd

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
)

// TestKeysListSaysWhichAlgorithmSigns: a new store signs with ES256, or
// with --signing-alg; a store keeps its algorithm when the flag changes;
// an unknown algorithm is refused.
func TestKeysListSaysWhichAlgorithmSigns(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no configuration file
	list, _, err := rootCmd.Find([]string{"keys", "list"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { globals.dbPath, globals.signingAlg = "", "ES256" })
	run := func(db, alg string) (string, error) {
		globals.dbPath, globals.signingAlg = db, alg
		// The store is made by a command that serves (keys list never
		// creates one), then listed.
		env, err := openBroker(context.Background(), broker.Options{Issuer: "https://writ.test"})
		if err != nil {
			return "", err
		}
		if err := env.Close(); err != nil {
			return "", err
		}
		var out bytes.Buffer
		list.SetOut(&out)
		list.SetContext(context.Background())
		err = list.RunE(list, nil)
		return out.String(), err
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name, db, alg, want string
	}{
		{"a new store: ES256", "default.db", "ES256", "signing with ES256"},
		{"a new store told EdDSA", "eddsa.db", "EdDSA", "signing with EdDSA"},
		{"that store keeps EdDSA", "eddsa.db", "ES256", "signing with EdDSA"},
		{"a new store told RS256", "rsa.db", "RS256", "signing with RS256"},
		{"an unknown algorithm", "other.db", "HS256", "want ES256, EdDSA or RS256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(filepath.Join(dir, tt.db), tt.alg)
			if err != nil {
				out = err.Error()
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("output %q, want %q", out, tt.want)
			}
			if tt.alg == "HS256" {
				if _, err := os.Stat(filepath.Join(dir, tt.db)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a refused --signing-alg left a store file: %v", err)
				}
			}
		})
	}
}
