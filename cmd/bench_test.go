package cmd

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePhases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"all", allPhases, ""},
		{defaultPhases, loadPhases, ""},
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
	ok := benchFlags{clients: 8, duration: time.Second, alg: "ES256", grants: 10, auditEntries: 10, revokes: 1, starts: 1,
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
