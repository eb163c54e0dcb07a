package policy

import (
	"context"
	"maps"

	"github.com/writhq/writ/broker"
)

// Fixed is a policy compiled into the program rather than read from a
// file (the demo's): never reloaded, and counted like a Watcher's, so its
// shadow rules' hits can be shown.
type Fixed struct {
	p     *Policy
	stats stats
}

// NewFixed wraps a compiled policy.
func NewFixed(p *Policy) *Fixed { return &Fixed{p: p} }

// Policy returns the policy in force.
func (f *Fixed) Policy() *Policy { return f.p }

// Evaluate implements broker.Policy.
func (f *Fixed) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	res, fx := f.EvaluateEffects(ctx, in)
	return withoutEffects(in, res, fx)
}

// EvaluateEffects implements broker.EffectsPolicy and counts the shadow
// rules that matched.
func (f *Fixed) EvaluateEffects(ctx context.Context, in broker.PolicyInput) (broker.PolicyResult, broker.PolicyEffects) {
	res, fx := f.p.EvaluateEffects(ctx, in)
	f.stats.record(res, fx)
	return res, fx
}

// ShadowHits returns how many requests each shadow rule has matched.
func (f *Fixed) ShadowHits() map[string]uint64 {
	f.stats.mu.Lock()
	defer f.stats.mu.Unlock()
	return maps.Clone(f.stats.shadow)
}
