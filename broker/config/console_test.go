package config

import (
	"strings"
	"testing"
)

func TestConsoleSection(t *testing.T) {
	c, err := ParseConsole("w.yaml", []byte("console:\n  theme: high-contrast\n  notify: osc9\n  mouse: true\n  oidc:\n    issuer: https://idp.example.com\n    client_id: writ\n    groups_claim: realm_access.roles\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Theme != "high-contrast" || c.Notify != "osc9" || c.Mouse == nil || !*c.Mouse ||
		c.OIDC.Issuer != "https://idp.example.com" || c.OIDC.ClientID != "writ" || c.OIDC.GroupsClaim != "realm_access.roles" {
		t.Errorf("got %+v", c)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"console:\n  theme: neon\n", "w.yaml:2: console.theme: unknown theme \"neon\""},
		{"console:\n  colour: red\n", "w.yaml:2: console.colour: unknown field; the fields here are mouse, notify, oidc, theme"},
		{"console:\n  oidc:\n    client_secret: s3cret\n", "w.yaml:3: console.oidc.client_secret: unknown field"},
		{"console:\n  oidc:\n    login: carrier-pigeon\n", "console.oidc.login"},
	} {
		if _, err := ParseConsole("w.yaml", []byte(tt.yaml)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.want)
		}
	}
	if c, err := ParseConsole("w.yaml", nil); err != nil || c.Theme != "" {
		t.Errorf("empty file: %+v %v", c, err)
	}
	// The broker's own loader accepts the section.
	if _, err := Parse("w.yaml", []byte("console:\n  theme: monochrome\n")); err != nil {
		t.Errorf("Parse refuses a console section: %v", err)
	}
}
