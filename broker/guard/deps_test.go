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

// TestSDKsDoNotLinkTheIssuer: a resource server that imports the guard or
// the MCP guard, or an agent that imports the agent SDK, links no part of
// writ's issuer.
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
		}
	}
}
