package demo

import (
	_ "embed"

	"github.com/writhq/writ/broker/policy"
)

// policyYAML is the demo's policy: testdata/policy.yaml without the
// two-person rule, which a demo with one operator could never satisfy.
//
//go:embed policy.yaml
var policyYAML []byte

// Policy compiles the demo's policy.
func Policy() (*policy.Policy, error) {
	return policy.Parse("demo policy (broker/demo/policy.yaml)", policyYAML)
}
