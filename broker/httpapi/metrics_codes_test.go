package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCodeCounters: the kept counters are the vector's own series, so
// /metrics shows every request under its endpoint and code, codes out of
// range included, and no series for a code never answered.
func TestCodeCounters(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"endpoint", "code"})
	a := &codeCounters{vec: vec, endpoint: "introspect"}
	b := &codeCounters{vec: vec, endpoint: "introspect"} // a second route with the same name
	for _, code := range []int{200, 200, 429, 999, 42} {
		a.inc(code)
	}
	b.inc(200)
	reg := prometheus.NewRegistry()
	reg.MustRegister(vec)
	families, err := reg.Gather()
	if err != nil || len(families) != 1 {
		t.Fatalf("gather: %v %d", err, len(families))
	}
	got := map[string]float64{}
	for _, m := range families[0].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["endpoint"] != "introspect" {
			t.Errorf("series %v", labels)
		}
		got[labels["code"]] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"200": 3, "429": 1, "999": 1, "42": 1}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for code, n := range want {
		if got[code] != n {
			t.Errorf("code %s: %v, want %v", code, got[code], n)
		}
	}
}
