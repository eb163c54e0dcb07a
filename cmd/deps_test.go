package cmd

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestCode: test helpers (package testing, rapid,
// teatest) stay out of the writ binary (issue 12).
func TestBinaryLinksNoTestCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/writhq/writ").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, bad := range []string{"testing", "pgregory.net/rapid", "github.com/charmbracelet/x/exp/teatest/v2"} {
		if slices.Contains(deps, bad) {
			t.Errorf("the writ binary links %s", bad)
		}
	}
}
