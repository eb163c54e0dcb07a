package signin

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

func TestLongURLJoinsBackAndLinksWhole(t *testing.T) {
	url := "https://idp.example.com/authorize?client_id=writ&code_challenge=" + strings.Repeat("E9Melhoa2OwvFrEMTJgu", 8)
	for _, w := range []int{40, 80, 400} {
		out := indent(url, w)
		plain := ansi.Strip(out)
		if got := strings.ReplaceAll(strings.TrimSpace(plain), "\n", ""); got != url {
			t.Errorf("width %d: the lines join to %q, not the URL", w, got)
		}
		for _, l := range strings.Split(plain, "\n") {
			if ansi.StringWidth(l) > w {
				t.Errorf("width %d: a line of %d cells", w, ansi.StringWidth(l))
			}
		}
		if n := strings.Count(out, ansi.SetHyperlink(url)); n != strings.Count(plain, "\n")+1 {
			t.Errorf("width %d: %d of the lines link to the whole URL", w, n)
		}
	}
}
