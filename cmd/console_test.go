package cmd

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConsoleConfigFillsFlagsNotGiven(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "writ.yaml")
	if err := os.WriteFile(path, []byte("console:\n  theme: high-contrast\n  notify: osc9\n  oidc:\n    issuer: https://idp.example.com\n    client_id: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, _, err := rootCmd.Find([]string{"console"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		globals.configPath = ""
		for _, name := range []string{"theme", "notify", "oidc-issuer", "oidc-client-id"} {
			f := cmd.Flags().Lookup(name)
			_ = f.Value.Set(f.DefValue)
			f.Changed = false
		}
	})
	globals.configPath = path
	if err := cmd.Flags().Set("oidc-client-id", "from-flag"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WRIT_NOTIFY", "off")
	if err := applyEnv(cmd); err != nil {
		t.Fatal(err)
	}
	if err := applyConsoleConfig(cmd); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"theme":          "high-contrast",           // from the file
		"notify":         "off",                     // the environment beats the file
		"oidc-issuer":    "https://idp.example.com", // from the file
		"oidc-client-id": "from-flag",               // the command line beats both
	} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}
