package policy_test

import (
	"context"
	"testing"
	"time"

	"github.com/writhq/writ/broker/policy"
)

// TestFixedCountsShadowHits: a compiled-in policy (the demo's) counts its
// shadow rules' hits like a watched file does, for the Policy page.
func TestFixedCountsShadowHits(t *testing.T) {
	f := policy.NewFixed(mustParse(t, "rules:\n  - name: would-deny\n    mode: log\n    when: 'true'\n    effect: {deny: true}\n"))
	for range 3 {
		if res := f.Evaluate(context.Background(), input("a", time.Hour, "contents:read")); res.Verdict == "deny" {
			t.Fatalf("a shadow rule denied: %+v", res)
		}
	}
	if n := f.ShadowHits()["would-deny"]; n != 3 {
		t.Errorf("shadow hits %d, want 3", n)
	}
}
