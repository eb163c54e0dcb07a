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

// AwaitingForTest lists the awaiting index as request id → grant id (""
// while pending), for tests that compare it with the store.
func (s *Service) AwaitingForTest() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.awaiting))
	for id, w := range s.awaiting {
		out[id] = ""
		if w.grant != nil {
			out[id] = w.grant.ID
		}
	}
	return out
}

// SetMaxAwaitingForTest bounds the awaiting index at n entries until the
// test ends.
func SetMaxAwaitingForTest(t interface{ Cleanup(func()) }, n int) {
	saved := maxAwaiting
	maxAwaiting = n
	t.Cleanup(func() { maxAwaiting = saved })
}
