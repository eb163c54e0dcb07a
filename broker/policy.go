package broker

import (
	"context"
	"fmt"
	"time"
)

// PolicyInput is what a policy sees of a request when it arrives.
type PolicyInput struct {
	Request  *TaskRequest
	Agent    *Agent
	Resource *Resource
	Parent   *Grant // the parent grant of a follow-on request, if any
	Now      time.Time
	// History is the agent's recent past, from the Service's memory
	// indexes; nil reads as no history.
	History *AgentHistory
}

// Policy evaluates a request at submission. A "deny" verdict refuses the
// request before it reaches an operator; the other effects of the result
// (auto-approval, a TTL cap, more approvers, a risk label) are applied by
// the Service. Evaluate must not modify the input, and must fail toward
// less access: when it cannot tell, it denies or asks a person.
type Policy interface {
	Evaluate(ctx context.Context, in PolicyInput) PolicyResult
}

// Policy verdicts.
const (
	VerdictReview      = "review"       // an operator decides
	VerdictDeny        = "deny"         // refused at submission
	VerdictAutoApprove = "auto-approve" // approved at submission by a policy rule
)

// PolicyOperator is the identity a policy rule approves under, so the
// grant, the token's approver claim and the audit log name the rule.
func PolicyOperator(rule string) Operator {
	return Operator{Issuer: "writ", Subject: "policy:" + rule, Name: "policy rule " + rule}
}

// DefaultPolicy sends every request to review and labels it with the
// highest risk among its scopes, noting follow-ons that go beyond their
// parent.
type DefaultPolicy struct{}

// Evaluate implements Policy.
func (DefaultPolicy) Evaluate(_ context.Context, in PolicyInput) PolicyResult {
	res := Baseline(in)
	res.Trace = append(res.Trace, "verdict: review by an operator")
	return res
}

// Baseline is where every policy starts: review, the highest risk among
// the request's scopes in the catalogue, and how a follow-on compares
// with its parent grant, without a verdict line.
func Baseline(in PolicyInput) PolicyResult {
	res := PolicyResult{Verdict: VerdictReview}
	if in.Resource != nil && in.Request != nil {
		res.Risk = in.Resource.RiskOf(in.Request.Terms)
		res.Trace = append(res.Trace, fmt.Sprintf("risk: highest action risk is %s", res.Risk))
	}
	if in.Parent != nil && in.Request != nil {
		if why := FollowOnBeyondParent(in); why != "" {
			res.Trace = append(res.Trace, "follow-on goes beyond its parent grant: "+why)
		} else {
			res.Trace = append(res.Trace, "follow-on stays within its parent grant")
		}
	}
	return res
}

// FollowOnBeyondParent says how a follow-on request would reach beyond its
// parent grant (an action, a location, or an end later than the
// parent's), or "" when it stays within it. It compares authorities: the
// request as if granted now, and the parent as granted.
func FollowOnBeyondParent(in PolicyInput) string {
	if in.Parent == nil || in.Request == nil {
		return ""
	}
	return FollowOnBeyond(in.Request.Terms, in.Parent, in.Now)
}

// FollowOnBeyond is FollowOnBeyondParent for terms t asked for at now.
func FollowOnBeyond(t Terms, parent *Grant, now time.Time) string {
	return t.Authority(now.Add(t.TTL)).Within(parent.Authority())
}
