// Package policy is writ's policy-as-code: a YAML file of rules, each a
// CEL expression over the request, the agent, the parent grant and the
// time, with an effect (deny, require_approvals, max_ttl, auto_approve,
// label). Expressions are compiled and type-checked when the file is
// loaded and evaluated, with a cost limit and a timeout, for each request
// when it arrives. A *Policy implements broker.Policy; a Watcher reloads
// the file when it changes and keeps the last good policy when it breaks.
package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/writhq/writ/broker"
)

// Evaluation bounds. CostLimit is CEL's measure of work (roughly one unit
// per operation and per list element visited); a rule that would exceed
// it, or run longer than EvalTimeout, is cut off and fails toward less
// access.
const (
	CostLimit   = 100_000
	EvalTimeout = 100 * time.Millisecond
)

// evalTimeout is EvalTimeout; a test that must reach the cost limit on a
// slow machine raises it, so the two bounds do not race.
var evalTimeout = EvalTimeout

// Policy is a compiled policy file. It is immutable and safe for
// concurrent use.
type Policy struct {
	name  string
	rules []*rule
}

var _ broker.EffectsPolicy = (*Policy)(nil)

// rule is one compiled rule.
type rule struct {
	file     string
	index    int
	line     int
	name     string
	when     string
	whenLine int
	effect   effect
	// shadow is mode: log: evaluated and traced, never enforced.
	shadow bool
	// loops is whether the expression has a comprehension (all, exists,
	// map, filter): only those can run long enough to need a timeout.
	loops bool
	prg   cel.Program
}

// effect is what a matched rule does. A rule may combine the restricting
// effects (require_approvals, max_ttl, label), and auto_approve with a
// max_ttl or a low label; deny stands alone.
type effect struct {
	deny             bool
	reason           string
	requireApprovals int
	maxTTL           time.Duration
	autoApprove      bool
	label            broker.Risk
	dropActions      []string // sorted
	onDeny           string   // with deny: broker.OnDenyRevokeParent or OnDenyQuarantineAgent
}

// restricts reports whether the effect takes access away (everything but
// auto_approve): such a rule counts as matched when it cannot be evaluated.
func (e effect) restricts() bool {
	return e.deny || e.requireApprovals > 0 || e.maxTTL > 0 || e.label > 0 || len(e.dropActions) > 0
}

// Name is the file the policy was read from.
func (p *Policy) Name() string { return p.name }

// Len is the number of rules.
func (p *Policy) Len() int { return len(p.rules) }

// Rules names the rules in file order.
func (p *Policy) Rules() []string {
	out := make([]string, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.name
	}
	return out
}

// Evaluate implements broker.Policy, for a caller that applies no
// PolicyEffects: the result of EvaluateEffects, except that a request
// whose drop_actions the caller will not apply is judged as asked (see
// withoutEffects).
func (p *Policy) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	res, fx := p.EvaluateEffects(ctx, in)
	return withoutEffects(in, res, fx)
}

// withoutEffects is the result for a caller that will not apply the
// effects: with drop_actions unapplied the request keeps every action, so
// its risk is the full request's and it is never approved without a
// person. (on_deny only adds to a denial; shadow hits change nothing.)
func withoutEffects(in broker.PolicyInput, res broker.PolicyResult, fx broker.PolicyEffects) broker.PolicyResult {
	if len(fx.DropActions) == 0 {
		return res
	}
	if in.Resource != nil {
		res.Risk = max(res.Risk, in.Resource.RiskOf(in.Request.Terms))
	}
	res.Trace = slices.Clone(res.Trace)
	line := "drop_actions not applied by this caller: the request is judged as asked (risk " + res.Risk.String() + ")"
	if res.Verdict == broker.VerdictAutoApprove {
		res.Verdict, res.Rule, res.AutoApprove = broker.VerdictReview, "", false
		res.Trace[len(res.Trace)-1] = line
		res.Trace = append(res.Trace, "verdict: review by an operator")
		return res
	}
	n := len(res.Trace)
	res.Trace = append(res.Trace[:n-1:n-1], line, res.Trace[n-1])
	return res
}

// EvaluateEffects implements broker.EffectsPolicy. Every rule is
// evaluated, so the trace names all that matched: one line per rule
// (name → effect), then the verdict. Deny wins over everything; the
// strictest max_ttl and the largest require_approvals win; labels raise
// the catalogue's risk; drop_actions of every matching rule are removed
// (the risk and any auto-approval are judged on what remains); an
// auto_approve applies only to a low-risk request that needs one approval
// and, for a follow-on, stays within its parent grant. A rule that cannot
// be evaluated counts as matched for its restricting effects, never
// auto-approves, and never triggers an on_deny. Shadow rules (mode: log)
// are evaluated and traced ("would deny") and never change the result.
func (p *Policy) EvaluateEffects(ctx context.Context, in broker.PolicyInput) (broker.PolicyResult, broker.PolicyEffects) {
	var fx broker.PolicyEffects
	if in.Request == nil {
		return broker.PolicyResult{Verdict: broker.VerdictDeny, Reason: "nothing to evaluate",
			Trace: []string{"no request to evaluate", "verdict: deny"}}, fx
	}
	res := broker.Baseline(in)
	vars, err := interpreter.NewActivation(activation(in))
	if err != nil {
		return broker.PolicyResult{Verdict: broker.VerdictDeny, Reason: "the request could not be evaluated",
			Trace: []string{"activation: " + err.Error(), "verdict: deny"}}, fx
	}
	var auto, dropRules []string
	var drop []string
	var labels broker.Risk
	for _, r := range p.rules {
		matched, err := r.eval(ctx, vars)
		if r.shadow {
			switch {
			case err != nil:
				res.Trace = append(res.Trace, fmt.Sprintf("shadow rule %s could not be evaluated (%v): not enforced", r.name, err))
			case matched:
				res.Trace = append(res.Trace, fmt.Sprintf("shadow rule %s would %s (mode: log, not enforced)", r.name, r.effect.describe()))
				fx.Shadow = append(fx.Shadow, broker.ShadowHit{Rule: r.name, Effect: r.effect.describe()})
			}
			continue
		}
		switch {
		case err != nil && r.effect.restricts():
			res.Trace = append(res.Trace, fmt.Sprintf("rule %s could not be evaluated (%v): counted as matched → %s",
				r.name, err, effect{deny: r.effect.deny, requireApprovals: r.effect.requireApprovals,
					maxTTL: r.effect.maxTTL, label: r.effect.label, dropActions: r.effect.dropActions}.describe()))
		case err != nil:
			res.Trace = append(res.Trace, fmt.Sprintf("rule %s could not be evaluated (%v): not applied", r.name, err))
			continue
		case !matched:
			continue
		default:
			res.Trace = append(res.Trace, "rule "+r.name+" → "+r.effect.describe())
		}
		fx.Matched = append(fx.Matched, r.name)
		e := r.effect
		if e.deny && res.Rule == "" {
			res.Verdict, res.Rule, res.Reason = broker.VerdictDeny, r.name, e.reason
		}
		if e.deny && e.onDeny != "" && err == nil {
			fx.OnDeny = append(fx.OnDeny, broker.OnDenyEffect{Action: e.onDeny, Rule: r.name})
		}
		res.RequireApprovals = max(res.RequireApprovals, e.requireApprovals)
		if e.maxTTL > 0 && (res.MaxTTL == 0 || e.maxTTL < res.MaxTTL) {
			res.MaxTTL = e.maxTTL
		}
		labels = max(labels, e.label)
		res.Risk = max(res.Risk, e.label)
		if e.autoApprove && err == nil {
			auto = append(auto, r.name)
		}
		if len(e.dropActions) > 0 {
			drop = append(drop, e.dropActions...)
			dropRules = append(dropRules, r.name)
		}
	}
	terms := in.Request.Terms
	if len(drop) > 0 && res.Verdict != broker.VerdictDeny {
		narrowed, dropped := terms.WithoutActions(drop)
		switch {
		case len(dropped) == 0:
			res.Trace = append(res.Trace, "drop_actions: the request has none of those actions")
		case len(narrowed.Actions()) == 0:
			res.Verdict, res.Rule = broker.VerdictDeny, dropRules[0]
			res.Reason = "policy drops every action the request asks for"
		default:
			terms = narrowed
			fx.DropActions, fx.DropRules = dropped, dropRules
			if in.Resource != nil {
				res.Risk = max(in.Resource.RiskOf(narrowed), labels)
			}
			res.Trace = append(res.Trace, fmt.Sprintf("drop_actions: %s removed before review; risk of the rest is %s",
				strings.Join(dropped, ", "), res.Risk))
		}
	}
	switch {
	case res.Verdict == broker.VerdictDeny:
		res.RequireApprovals, res.MaxTTL = 0, 0
		res.Trace = append(res.Trace, "verdict: deny by rule "+res.Rule)
		return res, fx
	case len(auto) > 0:
		if why := autoApproveBlocked(in, terms, res); why != "" {
			res.Trace = append(res.Trace, fmt.Sprintf("auto_approve of rule %s ignored: %s", auto[0], why))
			break
		}
		res.Verdict, res.Rule, res.AutoApprove = broker.VerdictAutoApprove, auto[0], true
		res.Trace = append(res.Trace, "verdict: auto-approve by rule "+auto[0]+", no person needed")
		return res, fx
	}
	if res.RequireApprovals > 1 {
		res.Trace = append(res.Trace, fmt.Sprintf("verdict: review by %d distinct operators", res.RequireApprovals))
	} else {
		res.Trace = append(res.Trace, "verdict: review by an operator")
	}
	return res, fx
}

// autoApproveBlocked says why an auto_approve may not take effect on the
// terms (the request's, less what policy drops), or "".
func autoApproveBlocked(in broker.PolicyInput, terms broker.Terms, res broker.PolicyResult) string {
	switch {
	case res.RequireApprovals > 1:
		return fmt.Sprintf("policy requires %d approvals", res.RequireApprovals)
	case res.Risk >= broker.RiskHigh:
		return "the request is " + res.Risk.String() + " risk"
	case res.Risk > broker.RiskLow:
		return "the request is " + res.Risk.String() + " risk; only low-risk requests are approved without a person"
	case in.Parent != nil && broker.FollowOnBeyond(terms, in.Parent, in.Now) != "":
		return "a follow-on that goes beyond its parent grant needs a person"
	case in.Request.ParentID != "" && in.Parent == nil:
		return "a follow-on of a task that was never granted needs a person"
	}
	return ""
}

// eval runs the rule's expression within the cost limit and the timeout.
// CEL can only be interrupted inside a comprehension, and only an
// expression with one can run long (without, its work is bounded by its
// size and the cost limit), so only those get a timer: a timer per rule
// would cost more than most rules.
func (r *rule) eval(ctx context.Context, vars interpreter.Activation) (bool, error) {
	if ctx.Err() != nil {
		return false, evalError(ctx, ctx.Err())
	}
	var out ref.Val
	var err error
	if r.loops {
		ctx, cancel := context.WithTimeout(ctx, evalTimeout)
		defer cancel()
		out, _, err = r.prg.ContextEval(ctx, vars)
		if err != nil {
			return false, evalError(ctx, err)
		}
	} else {
		out, _, err = r.prg.Eval(vars)
	}
	if err != nil {
		return false, evalError(ctx, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not a bool", out.Type())
	}
	return bool(b), nil
}

// evalError says in a trace line why an evaluation stopped.
func evalError(ctx context.Context, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("took longer than %s", evalTimeout)
	case ctx.Err() != nil:
		return errors.New("evaluation cancelled")
	case strings.Contains(msg, "cost limit"):
		return fmt.Errorf("exceeded the cost limit of %d", CostLimit)
	}
	return errors.New(clip(msg))
}
