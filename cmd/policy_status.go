package cmd

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/tui"
)

// policyStatusEvery is how often a console's Policy page is brought up to
// date: shadow-rule hits, standing approvals and their uses change without
// an event of their own.
const policyStatusEvery = 5 * time.Second

// statusKick asks the poller for a status now (after the console made or
// revoked a standing approval). It never blocks: one pending kick is enough.
type statusKick chan struct{}

func newStatusKick() statusKick { return make(statusKick, 1) }

func (k statusKick) kick() {
	select {
	case k <- struct{}{}:
	default:
	}
}

// pollPolicyStatus sends the console a PolicyStatusMsg at once, every
// `every`, and after each kick, until ctx ends. A fetch that fails (a
// remote server out of reach) sends nothing: the page keeps what it had
// and the header already says the connection is lost.
func pollPolicyStatus(ctx context.Context, every time.Duration, kick <-chan struct{},
	fetch func(context.Context) (tui.PolicyStatusMsg, error), send func(tea.Msg)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if m, err := fetch(ctx); err == nil {
			send(m)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// localPolicyStatus is the embedded console's status, read in process.
func localPolicyStatus(env *brokerEnv) func(context.Context) (tui.PolicyStatusMsg, error) {
	return func(context.Context) (tui.PolicyStatusMsg, error) {
		now := env.Service.Now()
		m := tui.PolicyStatusMsg{Standing: env.Service.StandingApprovals(), MaxStanding: env.Service.MaxStanding(), At: now}
		if w := env.Policy; w != nil {
			m.ShadowHits = w.ShadowHits()
			m.File = w.Path()
			if p := w.Policy(); p != nil {
				m.Rules = p.Len()
			}
			if err := w.Err(); err != nil {
				m.FileErr = err.Error()
			}
		} else if f := env.builtinPolicy; f != nil {
			m.ShadowHits = f.ShadowHits()
			m.File, m.Rules = f.Policy().Name(), f.Policy().Len()
		}
		return m, nil
	}
}

// remotePolicyStatus is a remote console's status, from the operator API.
func remotePolicyStatus(c *client.Client, now func() time.Time) func(context.Context) (tui.PolicyStatusMsg, error) {
	return func(ctx context.Context) (tui.PolicyStatusMsg, error) {
		ctx, cancel := context.WithTimeout(ctx, policyStatusEvery)
		defer cancel()
		st, err := c.Standing(ctx)
		if err != nil {
			return tui.PolicyStatusMsg{}, err
		}
		m := tui.PolicyStatusMsg{Standing: st.Standing, ShadowHits: st.ShadowHits, MaxStanding: st.MaxStanding, At: now()}
		if p, err := c.Policy(ctx); err == nil {
			m.File, m.Rules, m.FileErr = p.File, p.Rules, p.Error
		}
		return m, nil
	}
}
