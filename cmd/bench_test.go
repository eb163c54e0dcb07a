package cmd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/store"
)

func TestParsePhases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"all", allPhases, ""},
		{defaultPhases, []string{phaseCycle, phaseIntrospect, phaseIntrospectAssert}, ""},
		{"cycle-operator,cycle", []string{phaseCycle, phaseCycleOperator}, ""},
		{"revoke-guards,cycle", []string{phaseCycle, phaseRevokeGuards}, ""},
		{"startup, cycle", []string{phaseCycle, phaseStartup}, ""},
		{"cycle,cycle", []string{phaseCycle}, ""},
		{"cycles", nil, `unknown phase "cycles"`},
		{"", nil, `unknown phase ""`},
	} {
		got, err := parsePhases(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestBenchFlagsCheck(t *testing.T) {
	ok := benchFlags{clients: 8, operators: 2, duration: time.Second, alg: "ES256", grants: 10, auditEntries: 10, revokes: 1, starts: 1,
		guards: 10, guardProcs: 2, rounds: 3}
	for _, tc := range []struct {
		name   string
		edit   func(*benchFlags)
		phases []string
		err    string
	}{
		{"fine", func(*benchFlags) {}, allPhases, ""},
		{"too long", func(f *benchFlags) { f.duration = time.Hour }, loadPhases, "--duration"},
		{"bad alg", func(f *benchFlags) { f.alg = "RS256" }, loadPhases, "--alg"},
		{"server without setup", func(f *benchFlags) { f.server = "http://127.0.0.1:8470" }, loadPhases, "--setup"},
		{"server with a store phase", func(f *benchFlags) { f.server, f.setupDir = "http://127.0.0.1:8470", "x" }, []string{phaseStartup}, "cannot run against --server"},
		{"server and compare", func(f *benchFlags) { f.server, f.setupDir, f.compare = "http://127.0.0.1:8470", "x", true }, loadPhases, "--compare"},
		{"no grants", func(f *benchFlags) { f.grants = 0 }, allPhases, "--grants"},
		{"no operators", func(f *benchFlags) { f.operators = 0 }, []string{phaseCycleOperator}, "--operators"},
		{"operator cycle against a server", func(f *benchFlags) { f.server, f.setupDir = "http://127.0.0.1:8470", "x" }, []string{phaseCycleOperator}, ""},
		{"more guards than streams", func(f *benchFlags) { f.guards = maxBenchGuards + 1 }, allPhases, "--guards"},
	} {
		f := ok
		tc.edit(&f)
		err := f.check(tc.phases)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}

// The memory line of the table says what the RSS is made of, and the
// store line how many bytes of file each grant takes, bucket by bucket.
func TestBenchTableMemory(t *testing.T) {
	s := &benchSummary{Memory: &memoryResult{Grants: 2, RSSAfterStart: 90 << 20, AnonAfterStart: 40 << 20, FileAfterStart: 50 << 20,
		Cycles: 2, RSSAfterLoad: 100 << 20, AnonAfterLoad: 60 << 20, FileAfterLoad: 40 << 20, PeakRSS: 120 << 20, StoreBytes: 1 << 20,
		Store: &store.Usage{FileBytes: 2 << 20, PageSize: 4096, OtherPages: 7, Buckets: []store.BucketUsage{
			{Name: "requests", Keys: 4, Pages: 2, Alloc: 8192, Inuse: 4096},
			{Name: "grants", Keys: 4, Pages: 1, Alloc: 4096, Inuse: 3072},
			{Name: "signals"},
		}}}}
	var b strings.Builder
	s.writeTable(&b)
	for _, want := range []string{
		"RSS 90 MiB (anonymous 40 MiB, file 50 MiB) after start",
		"100 MiB (anonymous 60 MiB, file 40 MiB) after 2 cycles; peak 120 MiB",
		"store after the load: 2 MiB, 7 pages in no bucket (free, freelist, meta); 4 grants, per grant: requests 2048 B (50% full) grants 1024 B (75% full)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
