package tui

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// statusOf is the PolicyStatusMsg cmd sends, read from a real broker.
func statusOf(svc *broker.Service) PolicyStatusMsg {
	return PolicyStatusMsg{Standing: svc.StandingApprovals(), MaxStanding: svc.MaxStanding(), At: svc.Now()}
}

// Priya approves the support agent's recurring customer query and allows
// it again for an hour: the next one is approved without her, the Policy
// page lists the standing approval with its use, and revoking it there
// (confirmed, with a reason) sends the next request back to a person.
func TestFlowStandingFromApproval(t *testing.T) {
	svc, c := realBroker(t)
	first := submit(t, svc, "support-bot", "weekly customers query", "https://db.internal/customers", 10*time.Minute, "customers:read")
	var f atomic.Pointer[flow]
	opts := Options{Now: c.Now, Session: session(c), StandingChanged: func() {
		if fl := f.Load(); fl != nil {
			fl.tm.Send(statusOf(svc))
		}
	}}
	fl := startFlow(t, svc, opts, 140, 34)
	f.Store(fl)
	fl.waitShow("weekly customers query", "[MED]")
	fl.keys("s")
	fl.waitShow("Approve and allow again?", "[30m]", "customers:read")
	fl.keys("right")
	fl.waitShow("[1h]")
	fl.typeText("weekly report")
	fl.keys("enter")
	fl.waitShow("standing approval", "support-bot may repeat this for 1h")
	sas := svc.StandingApprovals()
	if len(sas) != 1 || sas[0].FromRequest != first.ID || sas[0].Reason != "weekly report" || sas[0].ExpiresAt.Sub(sas[0].CreatedAt) != time.Hour ||
		sas[0].CreatedBy != priya {
		t.Fatalf("standing approvals = %+v", sas)
	}

	again := submit(t, svc, "support-bot", "weekly customers query, next week", "https://db.internal/customers", 10*time.Minute, "customers:read")
	if again.State != broker.RequestApproved {
		t.Fatalf("the covered request is %s, want approved without a person", again.State)
	}
	fl.tm.Send(statusOf(svc)) // cmd's poll
	fl.keys("5")
	fl.waitShow("[Policy]", "ACTIVE", "support-bot", "customers:read on https://db.internal/customers", "1:00:00 left", "1 use", "by Priya Raman")

	fl.keys("r")
	fl.waitShow("Revoke standing approval", "then wait for a person", "Audited under Priya Raman")
	fl.keys("enter") // the first preset
	fl.waitShow("REVOKED", "revoked: no request is approved under it from now on")
	if st := svc.StandingApprovals()[0].State(c.Now()); st != broker.StandingRevoked {
		t.Fatalf("after revoke the standing approval is %s", st)
	}
	if r := submit(t, svc, "support-bot", "weekly customers query, once more", "https://db.internal/customers", 10*time.Minute, "customers:read"); r.State != broker.RequestPending {
		t.Fatalf("after revoke the request is %s, want pending", r.State)
	}
}

// The narrow dialog's s grants the narrowed terms and makes the standing
// approval of exactly those; high risk is never offered one.
func TestFlowStandingFromNarrow(t *testing.T) {
	svc, c := realBroker(t)
	submit(t, svc, "release-bot", "read docs and open a PR", "https://api.github.com", time.Hour, "contents:read", "pull_requests:write")
	fl := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 140, 34)
	fl.waitShow("read docs and open a PR")
	fl.keys("n")
	fl.waitShow("Narrow and grant")
	fl.keys("down", "space") // drop pull_requests:write
	fl.waitShow("- pull_requests:write")
	fl.keys("s")
	fl.waitShow("Approve and allow again?", "contents:read")
	fl.keys("enter")
	fl.waitShow("standing approval", "release-bot may repeat this for 30m")
	sas := svc.StandingApprovals()
	if len(sas) != 1 || !slices.Equal(sas[0].Terms.Actions(), []string{"contents:read"}) {
		t.Fatalf("standing approvals = %+v", sas)
	}

	submit(t, svc, "release-bot", "push the release tag", "https://api.github.com", 15*time.Minute, "contents:write")
	fl.waitShow("push the release tag")
	fl.keys("s")
	fl.waitShow("never made for high-risk requests")
	if gs, _ := svc.Grants(context.Background(), 0); len(gs) != 1 {
		t.Fatalf("grants = %d, want only the narrowed one", len(gs))
	}
}
