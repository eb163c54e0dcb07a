package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// buildWrit builds the binary once per test that needs it.
func buildWrit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "writ")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build writ: %v\n%s", err, out)
	}
	return bin
}

type cli struct {
	t     *testing.T
	bin   string
	state string
}

// run runs writ with args and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+c.state, "XDG_CONFIG_HOME="+c.state, "WRIT_SERVER=")
	cmd.Stdin = strings.NewReader("") // not a terminal: confirmations need --yes
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (c *cli) want(code int, args ...string) string {
	c.t.Helper()
	out, errs, got := c.run(args...)
	if got != code {
		c.t.Fatalf("writ %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), got, code, out, errs)
	}
	return out + errs
}

func TestOperatorCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds writ")
	}
	h := opapitest.Start(t, opapitest.Options{AutoApprove: "kim"})
	c := &cli{t: t, bin: buildWrit(t), state: t.TempDir()}

	c.want(exitUnauthorized, "requests", "ls", "--server", h.URL)
	c.want(exitUnreachable, "requests", "ls", "--server", "http://127.0.0.1:1")
	out := c.want(0, "login", "--server", h.URL)
	if !strings.Contains(out, "signed in to "+h.URL+" as Kim") || !strings.Contains(out, "/device?user_code=") {
		t.Fatalf("login said:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(c.state, "writ", "session.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", st, err)
	}

	req := h.Submit("publish the docs")
	var reqs []broker.TaskRequest
	if err := json.Unmarshal([]byte(c.want(0, "requests", "ls", "--json")), &reqs); err != nil || len(reqs) != 1 || reqs[0].ID != req.ID {
		t.Fatalf("requests ls --json: %v %v", reqs, err)
	}
	if out := c.want(0, "requests", "ls"); !strings.Contains(out, req.ID) || !strings.Contains(out, "publish the docs") {
		t.Fatalf("requests ls:\n%s", out)
	}
	c.want(exitNotFound, "requests", "show", "no-such-request")
	c.want(exitUsage, "requests", "deny", req.ID) // no reason
	out = c.want(0, "requests", "approve", req.ID)
	if !strings.Contains(out, "approved "+req.ID+": grant ") {
		t.Fatalf("approve said:\n%s", out)
	}
	out = c.want(exitConflict, "requests", "approve", req.ID)
	if !strings.Contains(out, "decided: approve by Kim") {
		t.Fatalf("a second approval must say who decided:\n%s", out)
	}
	r, _ := h.Svc.Request(context.Background(), req.ID)

	c.want(exitUsage, "grants", "revoke", r.GrantID) // not confirmed
	if g, _ := h.Svc.Grant(context.Background(), r.GrantID); g.State != broker.GrantActive {
		t.Fatal("an unconfirmed revoke revoked")
	}
	c.want(0, "grants", "revoke", "--yes", r.GrantID)
	if out := c.want(0, "grants", "revoke", "--yes", r.GrantID); !strings.Contains(out, "already revoked by Kim") {
		t.Fatalf("second revoke:\n%s", out)
	}
	if out := c.want(0, "grants", "ls", "--recent", "1h"); !strings.Contains(out, "revoked") {
		t.Fatalf("grants ls:\n%s", out)
	}

	live := h.Submit("live until the drill")
	c.want(0, "requests", "approve", live.ID)
	waiting := h.Submit("waits through the freeze")
	c.want(exitUsage, "revoke-all")
	c.want(0, "revoke-all", "--yes", "--reason", "script drill")
	if !h.Svc.IssuerState().Frozen {
		t.Fatal("revoke-all did not freeze")
	}
	// The grant's record still says active (an epoch ended it), but the
	// listing says what it is now, as the console does.
	if out := c.want(0, "grants", "ls"); !strings.Contains(out, "revoked with everything (revoke-all)") {
		t.Fatalf("grants ls after revoke-all:\n%s", out)
	}
	c.want(exitConflict, "requests", "approve", waiting.ID)
	c.want(0, "unfreeze", "--yes")
	c.want(0, "agents", "quarantine", "--yes", opapitest.Agent)
	if out := c.want(0, "agents", "ls"); !strings.Contains(out, "QUARANTINED") {
		t.Fatalf("agents ls:\n%s", out)
	}
	c.want(0, "agents", "release", opapitest.Agent)
	out = c.want(0, "audit", "tail", "-n", "50")
	for _, want := range []string{"all.revoked", "issuer.unfrozen", "agent.released", "script drill"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit tail lacks %q:\n%s", want, out)
		}
	}
}
