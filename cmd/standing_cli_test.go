package cmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// TestStandingCLI drives `writ requests approve --standing`, `writ
// standing ls` and `writ standing revoke` against a real server: the
// standing approval approves the agent's next request without a person
// until it is revoked; high risk and an over-long duration are refused
// while the approval itself stands.
func TestStandingCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds writ")
	}
	h := opapitest.Start(t, opapitest.Options{AutoApprove: "kim"})
	c := &cli{t: t, bin: buildWrit(t), state: t.TempDir()}
	c.want(0, "login", "--server", h.URL)
	ctx := context.Background()

	first := h.Submit("weekly docs sync")
	out := c.want(0, "requests", "approve", first.ID, "--standing", "30m", "--reason", "weekly sync")
	if !strings.Contains(out, "approved "+first.ID+": grant ") || !strings.Contains(out, "standing approval standing-") {
		t.Fatalf("approve --standing said:\n%s", out)
	}
	var st opapi.StandingStatus
	if err := json.Unmarshal([]byte(c.want(0, "standing", "ls", "--json")), &st); err != nil || len(st.Standing) != 1 {
		t.Fatalf("standing ls --json: %v %+v", err, st)
	}
	sa := st.Standing[0]
	if sa.AgentID != opapitest.Agent || sa.CreatedBy.Name != "Kim" || sa.Reason != "weekly sync" || sa.FromRequest != first.ID {
		t.Fatalf("standing approval: %+v", sa)
	}

	// The same task again: approved under the standing approval, no person.
	again := h.Submit("weekly docs sync, next run")
	if r, _ := h.Svc.Request(ctx, again.ID); r.State != broker.RequestApproved {
		t.Fatalf("covered request is %s, want approved", r.State)
	}
	if out := c.want(0, "standing", "ls"); !strings.Contains(out, sa.ID) || !strings.Contains(out, "active") || !strings.Contains(out, "weekly sync") {
		t.Fatalf("standing ls:\n%s", out)
	}

	c.want(exitUsage, "standing", "revoke", sa.ID) // not confirmed
	if r := h.Submit("still covered"); r.State != broker.RequestApproved {
		t.Fatal("an unconfirmed revoke revoked")
	}
	if out := c.want(0, "standing", "revoke", "--yes", sa.ID); !strings.Contains(out, "revoked standing approval "+sa.ID) {
		t.Fatalf("standing revoke said:\n%s", out)
	}
	if r := h.Submit("after the revoke"); r.State != broker.RequestPending {
		t.Fatalf("after revoke the request is %s, want pending", r.State)
	}

	// High risk: the approval stands, the standing approval is refused.
	risky := h.Submit("push the release", "contents:write")
	out = c.want(exitForbidden, "requests", "approve", risky.ID, "--standing", "30m")
	if !strings.Contains(out, "approved "+risky.ID) || !strings.Contains(out, "no standing approval") {
		t.Fatalf("high-risk approve --standing said:\n%s", out)
	}
	if r, _ := h.Svc.Request(ctx, risky.ID); r.State != broker.RequestApproved {
		t.Fatalf("the approval must stand: %s", r.State)
	}
	// Beyond the maximum.
	long := h.Submit("nightly export")
	if out := c.want(exitUsage, "requests", "approve", long.ID, "--standing", "9h"); !strings.Contains(out, "at most 8h") {
		t.Fatalf("over-long standing said:\n%s", out)
	}
	if out := c.want(0, "audit", "tail", "-n", "50"); !strings.Contains(out, "standing.created") || !strings.Contains(out, "standing.revoked") {
		t.Fatalf("audit lacks the standing approval:\n%s", out)
	}
}
