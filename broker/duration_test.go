package broker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// TestDurationsReadAsPeopleWriteThem (issue 9): records and exports write
// durations as "15m", never nanoseconds, and still read records written
// with nanoseconds.
func TestDurationsReadAsPeopleWriteThem(t *testing.T) {
	r := broker.TaskRequest{ID: "r", Interval: 5 * time.Second, Terms: broker.Terms{Scopes: []string{"a"}, TTL: 15 * time.Minute},
		Policy: &broker.PolicyResult{Verdict: broker.VerdictReview, MaxTTL: 90 * time.Minute}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ttl":"15m"`, `"max_ttl":"1h30m"`, `"interval":"5s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back broker.TaskRequest
	if err := json.Unmarshal(b, &back); err != nil || back.Terms.TTL != 15*time.Minute || back.Policy.MaxTTL != 90*time.Minute || back.Interval != 5*time.Second {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	old := `{"id":"r","interval":5000000000,"terms":{"scopes":["a"],"resource":"","ttl":900000000000},"policy":{"verdict":"review","max_ttl":60000000000}}`
	if err := json.Unmarshal([]byte(old), &back); err != nil || back.Terms.TTL != 15*time.Minute || back.Policy.MaxTTL != time.Minute || back.Interval != 5*time.Second {
		t.Fatalf("a record written with nanoseconds: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"terms":{"ttl":"forever"}}`), &back); err == nil {
		t.Error("an unreadable duration was accepted")
	}
}
