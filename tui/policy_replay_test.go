package tui

import (
	"errors"
	"testing"
)

// A reloaded policy's replay summary shows in the policy banner, with
// agent-reachable text neutralised, and the next one replaces it.
func TestFlowPolicyReplayBanner(t *testing.T) {
	svc, c := realBroker(t)
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 160, 30)
	f.waitShow("No requests waiting")
	f.tm.Send(PolicyReplayMsg{File: "policy.yaml", At: c.Now(),
		Summary: "replay: 3 of 40 requests since Dec 1 17:25 would change: 3 auto-approved → reviewed by a person\x1b[31m"})
	f.waitShow("POLICY RELOADED: policy.yaml · last 24 h replay: 3 of 40 requests since Dec 1 17:25 would change: 3 auto-approved → reviewed by a person")
	f.tm.Send(PolicyReplayMsg{File: "policy.yaml", At: c.Now(), Err: errors.New("store closed")})
	f.waitShow("POLICY RELOADED: policy.yaml: replay over the last 24 h failed: store closed")
	f.waitGone("3 of 40 requests")
}
