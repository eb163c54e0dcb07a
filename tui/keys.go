package tui

import "charm.land/bubbles/v2/key"

// keyMap holds every binding; pages pick theirs for the help bar.
type keyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom        key.Binding
	NextTab, PrevTab, Tab1, Tab2, Tab3, Tab4, Tab5 key.Binding
	Filter, ClearFilter, Help, Quit                key.Binding
	Emergency, Unfreeze, SignIn                    key.Binding
	CopyID                                         key.Binding

	Approve, Narrow, Deny, Expand  key.Binding
	Standing, ScrollUp, ScrollDown key.Binding
	Revoke, RevokeAgent            key.Binding
	Quarantine, Release            key.Binding
	Verify, Kind, More             key.Binding

	// Dialogs.
	Confirm, Cancel, Toggle, Shorten, Lengthen key.Binding
}

func newKeyMap() keyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Up:          b("↑/k", "up", "up", "k"),
		Down:        b("↓/j", "down", "down", "j"),
		PageUp:      b("pgup", "page up", "pgup", "ctrl+b"),
		PageDown:    b("pgdn", "page down", "pgdown", "ctrl+f"),
		Top:         b("g/home", "first", "home", "g"),
		Bottom:      b("G/end", "last", "end", "G"),
		NextTab:     b("tab", "next page", "tab"),
		PrevTab:     b("shift+tab", "previous page", "shift+tab"),
		Tab1:        b("1", "pending", "1"),
		Tab2:        b("2", "grants", "2"),
		Tab3:        b("3", "agents", "3"),
		Tab4:        b("4", "audit", "4"),
		Tab5:        b("5", "policy", "5"),
		Filter:      b("/", "filter", "/"),
		ClearFilter: b("esc", "clear filter", "esc"),
		Help:        b("?", "help", "?"),
		Quit:        b("q", "quit", "q", "ctrl+c"),
		Emergency:   b("!", "REVOKE ALL", "!"),
		Unfreeze:    b("U", "unfreeze", "U"),
		SignIn:      b("L", "sign in", "L"),
		CopyID:      b("y", "copy id", "y"),

		Approve:     b("a", "approve", "a"),
		Narrow:      b("n", "narrow", "n"),
		Deny:        b("d", "deny", "d"),
		Expand:      b("enter", "expand burst", "enter", "space"),
		Standing:    b("s", "approve + standing", "s"),
		ScrollUp:    b("shift+↑/[", "scroll detail up", "shift+up", "["),
		ScrollDown:  b("shift+↓/]", "scroll detail down", "shift+down", "]"),
		Revoke:      b("r", "revoke", "r"),
		RevokeAgent: b("R", "revoke agent", "R"),
		Quarantine:  b("x", "quarantine", "x"),
		Release:     b("u", "release", "u"),
		Verify:      b("v", "verify chain", "v"),
		Kind:        b("f", "kind filter", "f"),
		More:        b("m", "load older", "m"),

		Confirm:  b("enter", "confirm", "enter"),
		Cancel:   b("esc", "cancel", "esc"),
		Toggle:   b("space", "toggle", "space"),
		Shorten:  b("←/h", "shorten/narrow", "left", "h"),
		Lengthen: b("→/l", "lengthen/widen", "right", "l"),
	}
}

// helpKeys adapts a page's bindings to bubbles/help.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// bindingT shortens key.Binding in help lists.
type bindingT = key.Binding

// bind is a help-only binding.
func bind(k, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(k), key.WithHelp(k, desc))
}
