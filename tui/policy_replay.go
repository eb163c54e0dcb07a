package tui

import (
	"fmt"
	"time"
)

// PolicyReplayMsg tells a running console what a newly loaded policy file
// would have changed over the last day of requests (a replay over the
// audit log; see broker/policy.Replay). cmd sends it after each reload
// when the console runs beside its store; the console shows Summary in
// the policy banner until the next reload.
type PolicyReplayMsg struct {
	File    string
	Summary string // one line: what would change, or that nothing would
	At      time.Time
	Err     error // the replay could not run
}

// onPolicyReplay shows a replay summary in the policy banner.
func (m *Model) onPolicyReplay(msg PolicyReplayMsg) {
	a := m.a
	was := a.policyReplay
	switch {
	case msg.Err != nil:
		a.policyReplay = fmt.Sprintf("%s: replay over the last 24 h failed: %s", Neutralise(msg.File), Neutralise(msg.Err.Error()))
	default:
		a.policyReplay = fmt.Sprintf("%s · last 24 h %s", Neutralise(msg.File), Neutralise(msg.Summary))
	}
	if was == "" {
		m.resize(m.width, m.height)
	}
}

// policyReplayBanner is the policy banner's replay line.
func (m *Model) policyReplayBanner() string {
	return m.a.th.Warn.Render(fit(" POLICY RELOADED: "+m.a.policyReplay, m.width))
}
