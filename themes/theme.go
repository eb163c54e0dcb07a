// Package themes holds the console's styles: semantic roles (risk, state,
// selection, danger) mapped to colours by a few built-in themes. The
// console takes every style from a Theme and never names a colour itself.
//
// State is never carried by colour alone: the console pairs every styled
// state with a text tag, and selection uses reverse video, so the
// monochrome theme (and NO_COLOR) loses nothing but colour.
package themes

import (
	"fmt"
	"image/color"
	"os"
	"strings"

	"charm.land/lipgloss/v2"
)

// Theme is a set of semantic styles. Build one with ByName, Default,
// HighContrast or Monochrome; a Theme is read-only once built.
type Theme struct {
	// Name is the theme's name as --theme takes it.
	Name string
	// Dark reports whether it was built for a dark background.
	Dark bool
	// Adaptive themes are rebuilt when the terminal reports its background.
	Adaptive bool

	Text   lipgloss.Style // ordinary text
	Muted  lipgloss.Style // secondary text: ages, ids, hints
	Strong lipgloss.Style // emphasis: names, counts
	Title  lipgloss.Style // section headings in panes and dialogs

	Header      lipgloss.Style // the top line
	TabActive   lipgloss.Style // the current tab (reverse video as well as colour)
	TabInactive lipgloss.Style
	Selected    lipgloss.Style // the selected row: reverse video
	Arrival     lipgloss.Style // a request that arrived moments ago
	Pane        lipgloss.Style // the detail pane's frame
	Dialog      lipgloss.Style // a dialog's frame
	Emergency   lipgloss.Style // the armed revoke-all panel: full width, alarming
	Banner      lipgloss.Style // the FROZEN / session-expired banner
	Live        lipgloss.Style // the LIVE issuer tag
	Frozen      lipgloss.Style // the FROZEN issuer tag
	OK          lipgloss.Style // success: chain verified, approved
	Warn        lipgloss.Style // attention: bursts, expiring soon
	Error       lipgloss.Style // failure: broken chain, refused actions
	DiffAdd     lipgloss.Style // granted beyond the parent, or kept
	DiffRemove  lipgloss.Style // narrowed away
	Toast       lipgloss.Style
	ToastError  lipgloss.Style
	HelpKey     lipgloss.Style
	HelpDesc    lipgloss.Style
	HelpSep     lipgloss.Style

	// Risk styles the risk tag by level: 0 unknown, 1 low … 4 critical.
	Risk [5]lipgloss.Style

	rebuild func(dark bool) *Theme
}

// Names lists the built-in themes.
func Names() []string { return []string{"default", "high-contrast", "monochrome"} }

// ByName returns a built-in theme for the given background. The empty name
// is "default". When NO_COLOR is set (to anything), every theme is
// monochrome, as https://no-color.org asks.
func ByName(name string, dark bool) (*Theme, error) {
	if NoColor() {
		return Monochrome(), nil
	}
	switch strings.ToLower(name) {
	case "", "default":
		return Default(dark), nil
	case "high-contrast", "highcontrast", "contrast":
		return HighContrast(dark), nil
	case "monochrome", "mono", "none":
		return Monochrome(), nil
	}
	return nil, fmt.Errorf("unknown theme %q (want one of %s)", name, strings.Join(Names(), ", "))
}

// NoColor reports whether the NO_COLOR environment variable asks for no colour.
func NoColor() bool { return os.Getenv("NO_COLOR") != "" }

// WithBackground returns the theme rebuilt for a dark or light background;
// a theme that does not adapt returns itself.
func (t *Theme) WithBackground(dark bool) *Theme {
	if !t.Adaptive || t.rebuild == nil || t.Dark == dark {
		return t
	}
	return t.rebuild(dark)
}

// palette is what a coloured theme chooses; build turns it into styles.
type palette struct {
	text, muted, strong, accent color.Color
	ok, warn, danger, info      color.Color
	arrivalBg, emergencyBg      color.Color
	emergencyFg, frozenFg       color.Color
	risk                        [5]color.Color
}

func build(name string, dark bool, p palette) *Theme {
	s := lipgloss.NewStyle
	t := &Theme{
		Name: name, Dark: dark,
		Text:        s().Foreground(p.text),
		Muted:       s().Foreground(p.muted),
		Strong:      s().Foreground(p.strong).Bold(true),
		Title:       s().Foreground(p.accent).Bold(true),
		Header:      s().Foreground(p.strong).Bold(true),
		TabActive:   s().Foreground(p.accent).Bold(true).Reverse(true),
		TabInactive: s().Foreground(p.muted),
		Selected:    s().Reverse(true),
		Arrival:     s().Foreground(p.strong).Background(p.arrivalBg).Bold(true),
		Pane:        s().Border(lipgloss.RoundedBorder()).BorderForeground(p.muted),
		Dialog:      s().Border(lipgloss.RoundedBorder()).BorderForeground(p.accent).Padding(0, 1),
		Emergency:   s().Foreground(p.emergencyFg).Background(p.emergencyBg).Bold(true).Padding(0, 1),
		Banner:      s().Foreground(p.emergencyFg).Background(p.emergencyBg).Bold(true),
		Live:        s().Foreground(p.ok).Bold(true),
		Frozen:      s().Foreground(p.frozenFg).Background(p.danger).Bold(true).Reverse(false),
		OK:          s().Foreground(p.ok),
		Warn:        s().Foreground(p.warn).Bold(true),
		Error:       s().Foreground(p.danger).Bold(true),
		DiffAdd:     s().Foreground(p.ok),
		DiffRemove:  s().Foreground(p.danger).Strikethrough(true),
		Toast:       s().Foreground(p.info),
		ToastError:  s().Foreground(p.danger).Bold(true),
		HelpKey:     s().Foreground(p.text).Bold(true),
		HelpDesc:    s().Foreground(p.muted),
		HelpSep:     s().Foreground(p.muted),
	}
	for i, c := range p.risk {
		t.Risk[i] = s().Foreground(c)
	}
	t.Risk[3] = t.Risk[3].Bold(true)
	t.Risk[4] = t.Risk[4].Bold(true).Reverse(true)
	return t
}

// Default is the everyday theme; it adapts to dark and light backgrounds.
func Default(dark bool) *Theme {
	ld := lipgloss.LightDark(dark)
	c := lipgloss.Color
	p := palette{
		text:        ld(c("#1F2328"), c("#D0D7DE")),
		muted:       ld(c("#6E7781"), c("#8B949E")),
		strong:      ld(c("#0D1117"), c("#F0F6FC")),
		accent:      ld(c("#0550AE"), c("#79C0FF")),
		ok:          ld(c("#116329"), c("#56D364")),
		warn:        ld(c("#7D4E00"), c("#E3B341")),
		danger:      ld(c("#A40E26"), c("#FF7B72")),
		info:        ld(c("#0550AE"), c("#A5D6FF")),
		arrivalBg:   ld(c("#DDF4FF"), c("#1F3A5F")),
		emergencyBg: ld(c("#CF222E"), c("#B62324")),
		emergencyFg: c("#FFFFFF"),
		frozenFg:    ld(c("#FFFFFF"), c("#0D1117")),
		risk: [5]color.Color{
			ld(c("#A40E26"), c("#FF7B72")), // unknown counts as critical
			ld(c("#116329"), c("#56D364")),
			ld(c("#7D4E00"), c("#E3B341")),
			ld(c("#BC4C00"), c("#FFA657")),
			ld(c("#A40E26"), c("#FF7B72")),
		},
	}
	t := build("default", dark, p)
	t.Adaptive, t.rebuild = true, Default
	return t
}

// HighContrast uses only the strongest colours and bold text, for bright
// rooms, projectors and tired eyes. It adapts to the background.
func HighContrast(dark bool) *Theme {
	ld := lipgloss.LightDark(dark)
	c := lipgloss.Color
	fg := ld(c("#000000"), c("#FFFFFF"))
	p := palette{
		text: fg, muted: fg, strong: fg,
		accent:      ld(c("#0000CC"), c("#00FFFF")),
		ok:          ld(c("#006400"), c("#00FF00")),
		warn:        ld(c("#8B4500"), c("#FFFF00")),
		danger:      ld(c("#CC0000"), c("#FF5555")),
		info:        fg,
		arrivalBg:   ld(c("#FFFF00"), c("#0000CC")),
		emergencyBg: c("#CC0000"),
		emergencyFg: c("#FFFFFF"),
		frozenFg:    c("#FFFFFF"),
		risk: [5]color.Color{
			ld(c("#CC0000"), c("#FF5555")),
			ld(c("#006400"), c("#00FF00")),
			ld(c("#8B4500"), c("#FFFF00")),
			ld(c("#CC0000"), c("#FF5555")),
			ld(c("#CC0000"), c("#FF5555")),
		},
	}
	t := build("high-contrast", dark, p)
	t.Muted = t.Muted.Faint(false)
	t.Text = t.Text.Bold(false)
	t.Adaptive, t.rebuild = true, HighContrast
	return t
}

// Monochrome uses no colour at all: bold, faint, underline and reverse video
// carry everything. It is what NO_COLOR selects.
func Monochrome() *Theme {
	s := lipgloss.NewStyle
	t := &Theme{
		Name: "monochrome", Dark: true,
		Text:        s(),
		Muted:       s().Faint(true),
		Strong:      s().Bold(true),
		Title:       s().Bold(true).Underline(true),
		Header:      s().Bold(true),
		TabActive:   s().Bold(true).Reverse(true),
		TabInactive: s(),
		Selected:    s().Reverse(true),
		Arrival:     s().Bold(true).Underline(true),
		Pane:        s().Border(lipgloss.NormalBorder()),
		Dialog:      s().Border(lipgloss.DoubleBorder()).Padding(0, 1),
		Emergency:   s().Bold(true).Reverse(true).Padding(0, 1),
		Banner:      s().Bold(true).Reverse(true),
		Live:        s().Bold(true),
		Frozen:      s().Bold(true).Reverse(true),
		OK:          s(),
		Warn:        s().Bold(true),
		Error:       s().Bold(true).Underline(true),
		DiffAdd:     s().Bold(true),
		DiffRemove:  s().Strikethrough(true),
		Toast:       s(),
		ToastError:  s().Bold(true),
		HelpKey:     s().Bold(true),
		HelpDesc:    s().Faint(true),
		HelpSep:     s().Faint(true),
	}
	t.Risk = [5]lipgloss.Style{s().Bold(true).Reverse(true), s(), s(), s().Bold(true), s().Bold(true).Reverse(true)}
	return t
}
