package guard_test

import (
	"os/exec"
	"strings"
	"testing"
)

// sdkMayImport are the only packages of writ an SDK package may link: the
// wire types and the small helpers the SDKs share. The issuer (broker) and
// its transmitter (broker/ssf) are not among them (issue 14).
var sdkMayImport = map[string]bool{
	"github.com/writhq/writ/wire":                  true,
	"github.com/writhq/writ/wire/ssfwire":          true,
	"github.com/writhq/writ/broker/dpop":           true,
	"github.com/writhq/writ/broker/ratelimit":      true,
	"github.com/writhq/writ/broker/guard":          true,
	"github.com/writhq/writ/broker/guard/mcpguard": true,
	"github.com/writhq/writ/broker/agent":          true,
}

// sdkMayNotImport are module prefixes an SDK package must not link: the
// Prometheus client (and the protobuf under it) comes with
// broker/guard/guardprom, for the resource servers that want it.
var sdkMayNotImport = []string{"github.com/prometheus/", "google.golang.org/protobuf/"}

// TestSDKsDoNotLinkTheIssuer: a resource server that imports the guard or
// the MCP guard, or an agent that imports the agent SDK, links no part of
// writ's issuer, and no Prometheus client.
func TestSDKsDoNotLinkTheIssuer(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	for _, pkg := range []string{"github.com/writhq/writ/broker/guard", "github.com/writhq/writ/broker/guard/mcpguard",
		"github.com/writhq/writ/broker/agent"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/writhq/writ") && !sdkMayImport[dep] {
				t.Errorf("%s links %s", pkg, dep)
			}
			for _, prefix := range sdkMayNotImport {
				if strings.HasPrefix(dep, prefix) {
					t.Errorf("%s links %s (Prometheus belongs in broker/guard/guardprom)", pkg, dep)
				}
			}
		}
	}
}
