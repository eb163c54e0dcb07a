package tui

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// remoteConsole is a console whose Backend is the operator API over HTTP,
// as `writ console --server` runs it.
type remoteConsole struct {
	*flow
	c *client.Client
}

func startRemote(t *testing.T, h *opapitest.Harness, user string) *remoteConsole {
	t.Helper()
	var fl atomic.Pointer[flow]
	c := h.Client(user, func(up bool, err error) {
		if f := fl.Load(); f != nil {
			msg := ConnectionMsg{Connected: up}
			if err != nil {
				msg.Err = err.Error()
			}
			f.tm.Send(msg)
		}
	})
	op := c.Operator()
	f := startFlow(t, c, Options{Remote: true, APIAddr: h.URL, Now: time.Now,
		Session: &Session{Operator: op, Expires: time.Now().Add(time.Hour)}}, 140, 30)
	fl.Store(f)
	f.waitShow("No requests waiting")
	return &remoteConsole{flow: f, c: c}
}

// twoApprovers asks every request for two distinct approvers.
type twoApprovers struct{}

func (twoApprovers) Evaluate(context.Context, broker.PolicyInput) broker.PolicyResult {
	return broker.PolicyResult{Verdict: broker.VerdictReview, RequireApprovals: 2, Trace: []string{"two-person rule"}}
}

func TestTwoRemoteConsolesTwoPersonRule(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{Policy: twoApprovers{}})
	dana, omar := startRemote(t, h, "dana"), startRemote(t, h, "omar")
	h.Submit("tag release 1.4")
	dana.waitShow("tag release 1.4")
	omar.waitShow("tag release 1.4")

	dana.keys("a") // low risk: no confirmation
	dana.waitShow("approval 1 of 2 recorded")
	// Omar's screen learns of Dana's approval from the stream.
	omar.waitShow("approvals 1/2")
	omar.keys("a")
	for _, c := range []*remoteConsole{dana, omar} {
		c.waitShow("1 active grant")
		c.waitShow("No requests waiting")
	}
}

func TestRemoteConsolesRaceOneDecision(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana, omar := startRemote(t, h, "dana"), startRemote(t, h, "omar")
	req := h.Submit("read the changelog")
	dana.waitShow("read the changelog")
	omar.waitShow("read the changelog")
	// Both press approve at once: low risk, no confirmation.
	dana.keys("a")
	omar.keys("a")
	for _, c := range []*remoteConsole{dana, omar} {
		c.waitShow("1 active grant")
		c.waitShow("No requests waiting")
	}
	r, err := h.Svc.Request(context.Background(), req.ID)
	if err != nil || r.State != broker.RequestApproved {
		t.Fatalf("request %v, err %v", r, err)
	}
	gs, err := h.Svc.Grants(context.Background(), time.Hour)
	if err != nil || len(gs) != 1 {
		t.Fatalf("%d grants, want exactly 1 (err %v)", len(gs), err)
	}
	for _, c := range []*remoteConsole{dana, omar} {
		if s := c.p.current(); strings.Contains(s, "failed") {
			t.Errorf("a console shows a failure other than losing the race:\n%s", s)
		}
	}
}

func TestRemoteConsoleSurvivesServerRestart(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana := startRemote(t, h, "dana")
	h.Submit("before the restart")
	dana.waitShow("before the restart")

	h.Stop()
	dana.waitShow("DISCONNECTED")
	h.Restart()
	dana.waitGone("DISCONNECTED")
	h.Submit("after the restart")
	dana.waitShow("after the restart", "before the restart")
	// Revoke-all from the console reaches the restarted server.
	dana.keys("!")
	dana.waitShow("stop issuing")
	dana.keys("!")
	dana.waitShow("FROZEN")
	if !h.Svc.IssuerState().Frozen {
		t.Error("the server is not frozen")
	}
}

func TestRemoteConsoleShowsAgentKeys(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana := startRemote(t, h, "dana")
	h.Submit("look at the keys")
	s := dana.waitShow("look at the keys", "Release bot")
	if strings.Contains(s, "no keys or workload identity") {
		t.Errorf("a remote console lost the agent's public keys:\n%s", s)
	}
}

func TestRemoteConsoleAsksForAFreshSignIn(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{FreshAuth: 10 * time.Minute})
	dana := startRemote(t, h, "dana")
	h.Clock.Advance(11 * time.Minute) // the sign-in is now older than fresh_auth
	dana.keys("!")
	dana.waitShow("stop issuing")
	dana.keys("!")
	dana.waitShow("this needs a recent sign-in: press L")
	if h.Svc.IssuerState().Frozen {
		t.Error("a stale sign-in froze issuance")
	}
}

func TestQuarantinedAgentShowsWhoAndWhy(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana := startRemote(t, h, "dana")
	if _, err := dana.c.RevokeAgent(context.Background(), broker.Operator{}, opapitest.Agent, "leaked its key in a log", true); err != nil {
		t.Fatal(err)
	}
	dana.keys("3")
	dana.waitShow("QUARANTINED", "by Dana <dana@acme.test>", "leaked its key in a")
}
