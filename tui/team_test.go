package tui

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/broker/opapi/opapitest"
)

// writCLI runs the operator CLI binary as a third operator.
type writCLI struct {
	t          *testing.T
	bin, state string
}

func (c *writCLI) run(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+c.state, "XDG_CONFIG_HOME="+c.state, "WRIT_SERVER=")
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	case err != nil:
		c.t.Fatal(err)
	}
	return out.String(), 0
}

// TestThreeOperatorsShareOneServer: two consoles and a script, three
// operators, one server. Each sees the others' actions; nothing is decided
// twice.
func TestThreeOperatorsShareOneServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds writ")
	}
	bin := filepath.Join(t.TempDir(), "writ")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/writhq/writ").CombinedOutput(); err != nil {
		t.Fatalf("build writ: %v\n%s", err, out)
	}
	h := opapitest.Start(t, opapitest.Options{})
	dana, omar := startRemote(t, h, "dana"), startRemote(t, h, "omar")
	kim := &writCLI{t: t, bin: bin, state: t.TempDir()}
	h.ApproveNextDevice("kim")
	if out, code := kim.run("login", "--server", h.URL); code != 0 || !strings.Contains(out, "as Kim") {
		t.Fatalf("kim's login: %d\n%s", code, out)
	}

	// Kim approves from the script: both consoles see the grant.
	a := h.Submit("script-approved task")
	dana.waitShow("script-approved task")
	if out, code := kim.run("requests", "approve", a.ID); code != 0 {
		t.Fatalf("kim's approval: %d\n%s", code, out)
	}
	for _, c := range []*remoteConsole{dana, omar} {
		c.waitShow("1 active grant")
		c.waitGone("script-approved task")
	}

	// Dana approves in her console; Kim's later approval is refused and
	// names who decided.
	b := h.Submit("console-approved task")
	dana.waitShow("console-approved task")
	dana.keys("a")
	omar.waitShow("2 active grants")
	out, code := kim.run("requests", "approve", b.ID)
	if code != 6 || !strings.Contains(out, "decided: approve by Dana") {
		t.Fatalf("kim's late approval: exit %d\n%s", code, out)
	}

	// Kim pulls the break-glass from the shell; both consoles show it.
	if out, code := kim.run("revoke-all", "--yes", "--reason", "drill"); code != 0 {
		t.Fatalf("kim's revoke-all: %d\n%s", code, out)
	}
	for _, c := range []*remoteConsole{dana, omar} {
		c.waitShow("FROZEN")
		c.waitShow("0 active grants")
	}
	// Omar unfreezes from his console; Dana sees issuance live again.
	omar.keys("U")
	omar.waitShow("Unfreeze issuance?")
	omar.keys("y")
	dana.waitGone("FROZEN")
	dana.waitShow("LIVE")
	if out, code := kim.run("audit", "tail", "-n", "10"); code != 0 || !strings.Contains(out, "Omar") || !strings.Contains(out, "Kim") || !strings.Contains(out, "Dana") {
		t.Fatalf("the audit log does not name all three operators: %d\n%s", code, out)
	}
}
