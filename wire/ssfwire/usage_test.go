package ssfwire_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/writhq/writ/wire/ssfwire"
)

func TestParseUsageReport(t *testing.T) {
	many := make([]string, ssfwire.MaxUsageEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"sid":"g%d","accepted":1}`, i)
	}
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"empty", `{}`, true},
		{"one use", `{"uses":[{"sid":"g1","accepted":3,"refused":1,"first_accepted":1,"last_accepted":2,"endpoints":["GET /x"],"reasons":{"revoked":1}}]}`, true},
		{"not json", `{"uses":`, false},
		{"trailing data", `{} {}`, false},
		{"no sid", `{"uses":[{"accepted":1}]}`, false},
		{"long sid", `{"uses":[{"sid":"` + strings.Repeat("a", 257) + `"}]}`, false},
		{"negative count", `{"uses":[{"sid":"g","refused":-1}]}`, false},
		{"first after last", `{"uses":[{"sid":"g","first_refused":5,"last_refused":4}]}`, false},
		{"too many endpoints", `{"uses":[{"sid":"g","endpoints":["a","b","c","d","e"]}]}`, false},
		{"empty endpoint", `{"uses":[{"sid":"g","endpoints":[""]}]}`, false},
		{"empty reason", `{"uses":[{"sid":"g","reasons":{"":1}}]}`, false},
		{"too many entries", `{"uses":[` + strings.Join(many, ",") + `]}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ssfwire.ParseUsageReport([]byte(c.in))
			if (err == nil) != c.ok {
				t.Errorf("ParseUsageReport = %v, want ok %v", err, c.ok)
			}
		})
	}
}

func FuzzParseUsageReport(f *testing.F) {
	for _, s := range []string{`{}`, `{"uses":[{"sid":"g","accepted":1,"refused":2,"endpoints":["POST /x"],"reasons":{"revoked":2}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ssfwire.ParseUsageReport(b)
		if err != nil {
			return
		}
		if len(rep.Uses) > ssfwire.MaxUsageEntries {
			t.Fatalf("accepted %d entries", len(rep.Uses))
		}
		for _, u := range rep.Uses {
			if u.SID == "" || u.Accepted < 0 || u.Refused < 0 || u.FirstAccepted > u.LastAccepted || u.FirstRefused > u.LastRefused ||
				len(u.Endpoints) > ssfwire.MaxUseEndpoints || len(u.Reasons) > ssfwire.MaxUseReasons {
				t.Fatalf("accepted a malformed entry %+v", u)
			}
		}
	})
}

// TestLeaf: ssfwire links the standard library, go-jose and writ's wire
// package only, so every receiver can import it.
func TestLeaf(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/writhq/writ/wire/ssfwire").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/go-jose/go-jose/v4"), dep == "github.com/writhq/writ/wire", dep == "github.com/writhq/writ/wire/ssfwire":
		default:
			t.Errorf("ssfwire links %s", dep)
		}
	}
}
