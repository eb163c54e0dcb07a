package broker

import (
	"context"
	"time"

	"github.com/writhq/writ/broker/ratelimit"
)

// submitLimitOf is an agent's submission rate and burst: its own, else the
// configuration's limits, else the Service's options (each of rate and
// burst separately).
func (s *Service) submitLimitOf(agentID string) (ratelimit.Limit, bool) {
	lim := ratelimit.Limit{PerSecond: s.opts.SubmitRate, Burst: s.opts.SubmitBurst}
	cfg := s.Config()
	if cfg.Limits.SubmitRate > 0 {
		lim.PerSecond = cfg.Limits.SubmitRate
	}
	if cfg.Limits.SubmitBurst > 0 {
		lim.Burst = cfg.Limits.SubmitBurst
	}
	if a, ok := s.AgentConfig(agentID); ok {
		if a.SubmitRate > 0 {
			lim.PerSecond = a.SubmitRate
		}
		if a.SubmitBurst > 0 {
			lim.Burst = a.SubmitBurst
		}
	}
	return lim, true
}

// SubmissionAllowed reports whether agentID may submit a task request now,
// without using up its allowance (Submit does that), and if not how long
// until it may. A refusal is counted for the operator, as Submit's are.
// The HTTP layer asks it before reading a request's scopes and details,
// so a throttled agent costs no parsing.
func (s *Service) SubmissionAllowed(ctx context.Context, agentID string) (bool, time.Duration) {
	ok, wait := s.limiter.peek(agentID, s.now())
	if !ok {
		s.noteThrottled(ctx, agentID, "rate limit")
	}
	return ok, wait
}
