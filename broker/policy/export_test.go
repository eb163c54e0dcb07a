package policy

import (
	"testing"
	"time"
)

// RaiseEvalTimeout lets a test reach the cost limit however slow the
// machine, restoring the timeout when the test ends.
func RaiseEvalTimeout(t testing.TB, d time.Duration) {
	prev := evalTimeout
	evalTimeout = d
	t.Cleanup(func() { evalTimeout = prev })
}
