package ssfwire

import (
	"fmt"
	"unicode/utf8"
)

// UsageReport is the body guards send to the usage endpoint (writ's
// extension): how many uses of each grant's tokens they accepted and
// refused since their last report. It feeds the console's "revoked 3s ago,
// 2 refused uses since, 0 accepted".
type UsageReport struct {
	Uses []GrantUse `json:"uses"`
}

// GrantUse counts the uses of one grant's tokens, with when the first and
// latest accepted and refused ones happened (Unix milliseconds, 0 for
// none), the endpoints called (method and path, the first few), and why
// refused uses were refused (the guard's reason, counted).
type GrantUse struct {
	SID           string           `json:"sid"`
	Accepted      int64            `json:"accepted"`
	Refused       int64            `json:"refused"`
	FirstAccepted int64            `json:"first_accepted,omitempty"`
	LastAccepted  int64            `json:"last_accepted,omitempty"`
	FirstRefused  int64            `json:"first_refused,omitempty"`
	LastRefused   int64            `json:"last_refused,omitempty"`
	Endpoints     []string         `json:"endpoints,omitempty"`
	Reasons       map[string]int64 `json:"reasons,omitempty"`
}

// Limits on a usage report.
const (
	MaxUsageEntries = 1000
	maxUsageCount   = 1 << 40
	maxUsageMillis  = 1 << 50
	// MaxUseEndpoints and MaxUseReasons bound the endpoints and refusal
	// reasons one entry names; maxUseLabel bounds each of them.
	MaxUseEndpoints = 4
	MaxUseReasons   = 8
	maxUseLabel     = 200
)

// ParseUsageReport parses and checks a usage report body.
func ParseUsageReport(body []byte) (*UsageReport, error) {
	var rep UsageReport
	if err := DecodeStrict(body, &rep); err != nil {
		return nil, fmt.Errorf("the body is not a usage report: %v", err)
	}
	if len(rep.Uses) > MaxUsageEntries {
		return nil, fmt.Errorf("the report has %d entries; the limit is %d", len(rep.Uses), MaxUsageEntries)
	}
	for _, u := range rep.Uses {
		if u.SID == "" || len(u.SID) > maxJTILen {
			return nil, fmt.Errorf("an entry has no sid or one longer than %d bytes", maxJTILen)
		}
		if u.Accepted < 0 || u.Refused < 0 || u.Accepted > maxUsageCount || u.Refused > maxUsageCount {
			return nil, fmt.Errorf("use counts of %s are out of range", Quote(u.SID))
		}
		for _, ms := range []int64{u.FirstAccepted, u.LastAccepted, u.FirstRefused, u.LastRefused} {
			if ms < 0 || ms > maxUsageMillis {
				return nil, fmt.Errorf("use times of %s are out of range", Quote(u.SID))
			}
		}
		if u.FirstAccepted > u.LastAccepted || u.FirstRefused > u.LastRefused {
			return nil, fmt.Errorf("the first use of %s is after its last", Quote(u.SID))
		}
		if len(u.Endpoints) > MaxUseEndpoints || len(u.Reasons) > MaxUseReasons {
			return nil, fmt.Errorf("%s names more than %d endpoints or %d refusal reasons", Quote(u.SID), MaxUseEndpoints, MaxUseReasons)
		}
		for _, e := range u.Endpoints {
			if e == "" || len(e) > maxUseLabel || !utf8.ValidString(e) {
				return nil, fmt.Errorf("an endpoint of %s is empty, too long or not UTF-8", Quote(u.SID))
			}
		}
		for r, n := range u.Reasons {
			if r == "" || len(r) > maxUseLabel || !utf8.ValidString(r) || n < 0 || n > maxUsageCount {
				return nil, fmt.Errorf("a refusal reason of %s is malformed", Quote(u.SID))
			}
		}
	}
	return &rep, nil
}
