package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// On-deny effects: what else happens when a rule denies a request.
const (
	// OnDenyRevokeParent ends the parent grant of a denied follow-on: an
	// agent that reaches beyond its task loses the task.
	OnDenyRevokeParent = "revoke_parent"
	// OnDenyQuarantineAgent revokes everything the agent holds and
	// quarantines it until an operator releases it.
	OnDenyQuarantineAgent = "quarantine_agent"
)

// PolicyEffects are what a policy asks for beyond its PolicyResult: the
// actions to drop from a request before anyone reviews it, what to do
// when it denies, and the shadow rules that matched without being
// enforced. The zero value asks for nothing.
type PolicyEffects struct {
	// DropActions are the request's actions (scopes and detail actions)
	// policy removes, sorted; DropRules name the rules that asked.
	DropActions []string `json:"drop_actions,omitempty"`
	DropRules   []string `json:"drop_rules,omitempty"`
	// OnDeny are the on_deny effects of the rules that denied.
	OnDeny []OnDenyEffect `json:"on_deny,omitempty"`
	// Shadow are the rules in mode log that matched: traced and counted,
	// never enforced.
	Shadow []ShadowHit `json:"shadow,omitempty"`
	// Matched names the enforced rules that matched (or counted as
	// matched), in file order: what a replay cites as responsible.
	Matched []string `json:"matched,omitempty"`
}

// OnDenyEffect is one rule's on_deny.
type OnDenyEffect struct {
	Action string `json:"action"` // OnDenyRevokeParent or OnDenyQuarantineAgent
	Rule   string `json:"rule"`
}

// ShadowHit is a shadow rule that matched: Effect is what it would have
// done ("deny", "require_approvals 2", ...).
type ShadowHit struct {
	Rule   string `json:"rule"`
	Effect string `json:"effect"`
}

// EffectsPolicy is a Policy that can also ask for PolicyEffects. Evaluate
// must return the same result as EvaluateEffects.
type EffectsPolicy interface {
	Policy
	EvaluateEffects(ctx context.Context, in PolicyInput) (PolicyResult, PolicyEffects)
}

// evaluatePolicy evaluates the request with the service's policy and
// returns the effects it asks for (none for a plain Policy).
func (s *Service) evaluatePolicy(ctx context.Context, in PolicyInput) (PolicyResult, PolicyEffects) {
	if ep, ok := s.policy.(EffectsPolicy); ok {
		return ep.EvaluateEffects(ctx, in)
	}
	return s.policy.Evaluate(ctx, in), PolicyEffects{}
}

// WithoutActions returns a copy of the terms without the given actions:
// they leave the scopes and every detail's actions, and a detail left with
// no action is dropped. It reports which of them the terms had.
func (t Terms) WithoutActions(drop []string) (Terms, []string) {
	var dropped []string
	for _, a := range t.Actions() {
		if slices.Contains(drop, a) {
			dropped = append(dropped, a)
		}
	}
	// Every detail action is a scope, so the one narrowing rule
	// (Normalized) takes them out of the details too.
	out := t.Clone()
	out.Scopes = slices.DeleteFunc(out.Scopes, func(s string) bool { return slices.Contains(drop, s) })
	return out.Normalized(), dropped
}

// applyDropActions narrows a request being submitted by the actions
// policy drops, before it is stored, and says so in its trace ("narrowed
// by policy"). The policy has already judged the narrowed request (its
// risk, its auto-approval); a request left with nothing to grant was
// denied by the policy.
func applyDropActions(req *TaskRequest, pr *PolicyResult, fx PolicyEffects) {
	if len(fx.DropActions) == 0 {
		return
	}
	narrowed, dropped := req.Terms.WithoutActions(fx.DropActions)
	if len(dropped) == 0 {
		return
	}
	req.Terms = narrowed
	line := fmt.Sprintf("narrowed by policy (rule %s): %s dropped", strings.Join(fx.DropRules, ", "), strings.Join(dropped, ", "))
	if n := len(pr.Trace); n > 0 && strings.HasPrefix(pr.Trace[n-1], "verdict:") {
		pr.Trace = append(pr.Trace[:n-1:n-1], line, pr.Trace[n-1])
	} else {
		pr.Trace = append(pr.Trace, line)
	}
}

// applyOnDeny carries out the on_deny effects of a request policy
// refused, after the refusal is recorded: the parent grant of a follow-on
// is revoked, or the agent is quarantined. Each is done and audited by
// the ordinary revocation under the rule's policy operator. Errors are
// logged: the request is refused either way.
func (s *Service) applyOnDeny(ctx context.Context, req *TaskRequest, fx PolicyEffects, parent *Grant) {
	for _, e := range fx.OnDeny {
		op := PolicyOperator(e.Rule)
		switch e.Action {
		case OnDenyRevokeParent:
			if parent == nil {
				continue // not a follow-on of a live grant: nothing to end
			}
			reason := fmt.Sprintf("on_deny of policy rule %s: follow-on %s was denied", e.Rule, short(req.ID))
			if _, err := s.Revoke(ctx, op, parent.ID, reason); err != nil {
				s.log.Error("on_deny revoke_parent", "rule", e.Rule, "grant", short(parent.ID), "err", err)
			}
		case OnDenyQuarantineAgent:
			if s.agentState(req.AgentID).Quarantined {
				continue
			}
			reason := fmt.Sprintf("on_deny of policy rule %s: request denied", e.Rule)
			if _, err := s.RevokeAgent(ctx, op, req.AgentID, reason, true); err != nil {
				s.log.Error("on_deny quarantine_agent", "rule", e.Rule, "agent", req.AgentID, "err", err)
			}
		}
	}
}
