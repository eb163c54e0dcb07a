package policy_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker/policy"
)

func TestWatcherCountsShadowHitsForMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, `rules:
  - name: maybe-no-writes
    mode: log
    when: '"contents:write" in request.scopes'
    effect: {deny: true}
  - name: maybe-two-people
    mode: log
    when: 'true'
    effect: {require_approvals: 2}
`)
	w, err := policy.NewWatcher(path, policy.WatchOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for _, scopes := range [][]string{{"contents:write"}, {"contents:read"}, {"contents:write", "contents:read"}} {
		if res := w.Evaluate(context.Background(), input("release-bot", time.Hour, scopes...)); res.Verdict != "review" {
			t.Fatalf("a shadow rule decided: %+v", res)
		}
	}
	if got := w.ShadowHits(); got["maybe-no-writes"] != 2 || got["maybe-two-people"] != 3 {
		t.Fatalf("shadow hits %v", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"writ_policy_shadow_hits_total{rule=maybe-no-writes}":  2,
		"writ_policy_shadow_hits_total{rule=maybe-two-people}": 3,
		"writ_policy_evaluations_total{verdict=review}":        3,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
}
