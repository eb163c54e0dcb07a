package broker

import (
	"fmt"
	"strings"
)

// Risk is how much harm a scope can do in the wrong hands. The console shows
// the highest risk of a request as a tag, and asks for confirmation before
// approving high or critical risk as asked.
type Risk int

const (
	RiskLow Risk = iota + 1
	RiskMedium
	RiskHigh
	RiskCritical
)

var riskNames = map[Risk]string{RiskLow: "low", RiskMedium: "medium", RiskHigh: "high", RiskCritical: "critical"}

func (r Risk) String() string {
	if n, ok := riskNames[r]; ok {
		return n
	}
	return "unknown"
}

// ParseRisk parses "low", "medium", "high" or "critical".
func ParseRisk(s string) (Risk, error) {
	for r, n := range riskNames {
		if strings.EqualFold(s, n) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown risk %q (want low, medium, high or critical)", s)
}

func (r Risk) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Risk) UnmarshalText(b []byte) error {
	v, err := ParseRisk(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
