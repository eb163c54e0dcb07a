package themes

import (
	"strings"
	"testing"

	"charm.land/lipgloss/v2"
)

func TestByName(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for _, name := range append(Names(), "", "mono", "contrast") {
		th, err := ByName(name, true)
		if err != nil || th == nil {
			t.Errorf("ByName(%q) = %v, %v", name, th, err)
		}
	}
	if _, err := ByName("solarized", true); err == nil || !strings.Contains(err.Error(), "default, high-contrast, monochrome") {
		t.Errorf("ByName(unknown) error = %v, want one naming the themes", err)
	}
}

func TestNoColorSelectsMonochrome(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	th, err := ByName("default", true)
	if err != nil || th.Name != "monochrome" {
		t.Fatalf("ByName with NO_COLOR = %v, %v; want monochrome", th, err)
	}
}

func TestDefaultAdaptsToBackground(t *testing.T) {
	dark := Default(true)
	light := dark.WithBackground(false)
	if light.Dark || light == dark {
		t.Fatal("Default did not rebuild for a light background")
	}
	if dark.Text.GetForeground() == light.Text.GetForeground() {
		t.Error("dark and light default text share a colour")
	}
	if dark.WithBackground(true) != dark {
		t.Error("rebuilding for the same background made a new theme")
	}
	mono := Monochrome()
	if mono.WithBackground(false) != mono {
		t.Error("monochrome is not adaptive, yet it was rebuilt")
	}
}

// State is never colour alone: the selection and the active tab are
// reverse video in every theme, and monochrome sets no colour at all.
func TestStateNotByColourAlone(t *testing.T) {
	for _, th := range []*Theme{Default(true), Default(false), HighContrast(true), HighContrast(false), Monochrome()} {
		if !th.Selected.GetReverse() {
			t.Errorf("%s: selection is not reverse video", th.Name)
		}
		if !th.TabActive.GetReverse() {
			t.Errorf("%s: active tab is not reverse video", th.Name)
		}
		if !th.Risk[4].GetBold() {
			t.Errorf("%s: critical risk is not bold", th.Name)
		}
	}
	mono := Monochrome()
	for name, s := range map[string]lipgloss.Style{"Text": mono.Text, "Selected": mono.Selected, "Emergency": mono.Emergency,
		"Frozen": mono.Frozen, "Error": mono.Error, "Risk4": mono.Risk[4]} {
		if _, ok := s.GetForeground().(lipgloss.NoColor); !ok {
			t.Errorf("monochrome %s has foreground %v", name, s.GetForeground())
		}
		if _, ok := s.GetBackground().(lipgloss.NoColor); !ok {
			t.Errorf("monochrome %s has background %v", name, s.GetBackground())
		}
	}
}
