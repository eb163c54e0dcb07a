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
}

// Policy evaluates a request at submission. A "deny" verdict refuses the
// request before it reaches an operator.
type Policy interface {
	Evaluate(ctx context.Context, in PolicyInput) PolicyResult
}

// Policy verdicts.
const (
	VerdictReview = "review" // an operator decides
	VerdictDeny   = "deny"   // refused at submission
)

// DefaultPolicy sends every request to review and labels it with the
// highest risk among its scopes, noting follow-ons that go beyond their
// parent.
type DefaultPolicy struct{}

// Evaluate implements Policy.
func (DefaultPolicy) Evaluate(_ context.Context, in PolicyInput) PolicyResult {
	res := PolicyResult{Verdict: VerdictReview}
	if in.Resource != nil {
		res.Risk = in.Resource.HighestRisk(in.Request.Terms.Scopes)
		res.Trace = append(res.Trace, fmt.Sprintf("risk: highest scope risk is %s", res.Risk))
	}
	if in.Parent != nil {
		if why := in.Request.Terms.NarrowerThan(in.Parent.Terms); why != "" {
			res.Trace = append(res.Trace, "follow-on goes beyond its parent grant: "+why)
		} else {
			res.Trace = append(res.Trace, "follow-on stays within its parent grant")
		}
	}
	res.Trace = append(res.Trace, "verdict: review by an operator")
	return res
}
