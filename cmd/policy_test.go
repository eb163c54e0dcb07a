package cmd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
)

func TestServingCommandsTakePolicy(t *testing.T) {
	for _, name := range []string{"serve", "console", "demo"} {
		cmd, _, err := rootCmd.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Flags().Lookup("policy") == nil {
			t.Errorf("writ %s has no --policy", name)
		}
	}
}

func TestPolicyFlagBeatsConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("from-config.yaml", "rules:\n  - {name: from-config, when: 'true', effect: {label: high}}\n")
	fromFlag := write("from-flag.yaml", "rules:\n  - {name: from-flag, when: 'true', effect: {label: high}}\n")
	broken := write("broken.yaml", "rules:\n  - {name: broken, when: 'request.agent ==', effect: {label: high}}\n")
	globals.configPath = write("writ.yaml", "policy: from-config.yaml\n")
	t.Cleanup(func() { globals.configPath, globals.dbPath = "", "" })

	for _, tt := range []struct {
		name, flag string
		want       []string // rules in force; nil: an error
		err        string
	}{
		{"the configuration's file, beside it", "", []string{"from-config"}, ""},
		{"--policy beats it", fromFlag, []string{"from-flag"}, ""},
		{"a broken file stops the command", broken, nil, "broken.yaml:2: rules[0] (broken).when"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			globals.dbPath = filepath.Join(t.TempDir(), "writ.db")
			env, err := openServingBroker(context.Background(), broker.Options{Issuer: "http://127.0.0.1:1"}, tt.flag)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer env.Close()
			if env.Policy == nil || !slices.Equal(env.Policy.Policy().Rules(), tt.want) {
				t.Fatalf("policy %+v, want rules %v", env.Policy, tt.want)
			}
			if len(env.runners) != 1 {
				t.Errorf("%d runners: the policy file would not be reloaded", len(env.runners))
			}
		})
	}
}

func TestNoPolicyFileSendsEverythingToReview(t *testing.T) {
	globals.dbPath = filepath.Join(t.TempDir(), "writ.db")
	globals.configPath = filepath.Join(t.TempDir(), "writ.yaml")
	if err := os.WriteFile(globals.configPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { globals.configPath, globals.dbPath = "", "" })
	env, err := openServingBroker(context.Background(), broker.Options{Issuer: "http://127.0.0.1:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if env.Policy != nil || len(env.runners) != 0 {
		t.Errorf("policy %v, %d runners", env.Policy, len(env.runners))
	}
}
