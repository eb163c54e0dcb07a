package broker

// Test-only access to the policy effects the Service applies at
// submission, until Submit calls them.
var (
	ApplyOnDeny      = (*Service).applyOnDeny
	ApplyDropActions = applyDropActions
	EvaluatePolicy   = (*Service).evaluatePolicy
)

// ApproveByStanding is what Submit calls for a request policy sends to review.
var ApproveByStanding = (*Service).approveByStanding
