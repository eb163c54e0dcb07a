package guardprom_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/guard/guardprom"
)

// contactAge moves between two reads of the guard's counters.
const contactAge = "writ_guard_feed_contact_age_seconds"

// The collector reports the counters WriteMetrics writes, under the same
// names, types and help: a scrape through a registry and the guard's own
// text agree.
func TestCollectorMatchesWriteMetrics(t *testing.T) {
	g, err := guard.New(guard.Config{Issuer: "http://127.0.0.1:1", Audience: "https://rs.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"", "", "Bearer not-a-jwt"} {
		r := httptest.NewRequest("GET", "https://rs.example/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if _, err := g.Check(context.Background(), r); err == nil {
			t.Fatalf("Check(%q) accepted", auth)
		}
	}
	var text strings.Builder
	if err := g.WriteMetrics(&text); err != nil {
		t.Fatal(err)
	}
	want := parseText(t, text.String())
	if want.values[`writ_guard_refused_total{reason="no_token"}`] != 2 {
		t.Fatalf("WriteMetrics lacks the two refusals without a token:\n%s", text.String())
	}

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(guardprom.Collector(g)); err != nil {
		t.Fatalf("register: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := scrape{values: map[string]float64{}, help: map[string]string{}, kind: map[string]string{}}
	for _, f := range families {
		got.help[f.GetName()], got.kind[f.GetName()] = f.GetHelp(), strings.ToLower(f.GetType().String())
		for _, m := range f.GetMetric() {
			series := f.GetName()
			if labels := m.GetLabel(); len(labels) > 0 {
				var kv []string
				for _, l := range labels {
					kv = append(kv, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				series += "{" + strings.Join(kv, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got.values[series] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got.values[series] = m.GetGauge().GetValue()
			}
		}
	}
	for _, s := range []scrape{got, want} {
		if _, ok := s.values[contactAge]; !ok {
			t.Errorf("no %s", contactAge)
		}
		delete(s.values, contactAge)
	}
	if !maps.Equal(got.values, want.values) {
		t.Errorf("collector series:\n%v\nWriteMetrics series:\n%v", sorted(got.values), sorted(want.values))
	}
	if !maps.Equal(got.help, want.help) || !maps.Equal(got.kind, want.kind) {
		t.Errorf("collector help and types:\n%v\n%v\nWriteMetrics:\n%v\n%v", got.help, got.kind, want.help, want.kind)
	}
}

// scrape is one exposition: series → value, and each family's help and type.
type scrape struct {
	values     map[string]float64
	help, kind map[string]string
}

// parseText reads the text exposition WriteMetrics writes.
func parseText(t *testing.T, s string) scrape {
	t.Helper()
	out := scrape{values: map[string]float64{}, help: map[string]string{}, kind: map[string]string{}}
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			out.help[name] = help
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			out.kind[name] = kind
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("WriteMetrics line %q", line)
		}
		out.values[line[:i]] = v
	}
	return out
}

func sorted(m map[string]float64) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %g", k, m[k]))
	}
	return out
}
