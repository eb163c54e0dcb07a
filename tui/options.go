package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/themes"
)

// Options configure the console. The zero value works: default theme
// (adapting to the terminal's background), no mouse, the bell for arrivals,
// the wall clock, and no operator until one signs in.
type Options struct {
	// Context ends the live event subscription and cancels broker calls in
	// flight; context.Background() when nil. Cancel it when the program ends.
	Context context.Context
	// Theme is the style set (themes.ByName); the default theme, or
	// monochrome under NO_COLOR, when nil. An adaptive theme follows the
	// background colour the terminal reports.
	Theme *themes.Theme
	// Mouse enables click-to-select and wheel scrolling.
	Mouse bool
	// Notify says how to tell an unfocused operator that a request arrived.
	Notify Notify
	// Now is the clock; time.Now when nil. Tests fix it so countdowns are stable.
	Now func() time.Time
	// Session is the signed-in operator, if sign-in already happened.
	Session *Session
	// LastOperator is who revocations are audited under when there is no
	// live session (the identity that last signed in, kept by cmd).
	LastOperator *broker.Operator
	// SignIn builds the sign-in screen shown when there is no session and
	// when the operator presses L after the session expired. Nil: the
	// console says approvals need a sign-in and keeps everything else working.
	SignIn func() SignInScreen
	// OnSession is called (from a command, off the UI goroutine) whenever
	// an operator signs in through SignIn, so cmd can remember the last
	// operator across restarts.
	OnSession func(Session)
	// APIAddr is the agent API address shown in the header.
	APIAddr string
	// Remote marks a console attached to a writ server (writ console
	// --server): the header shows the server and the connection, and
	// quitting never affects agents.
	Remote bool
	// AskBeforeQuit makes q ask first: the embedded console's quit stops
	// the agent API. ctrl+c still quits at once.
	AskBeforeQuit bool
	// RecentGrants is how long ended grants stay on the Grants page
	// (default 10 minutes).
	RecentGrants time.Duration
	// Tick is how often countdowns redraw (default one second).
	Tick time.Duration
	// StandingChanged is called (from a command, off the UI goroutine)
	// after the console made or revoked a standing approval, so cmd can
	// send a fresh PolicyStatusMsg at once instead of at its next poll.
	StandingChanged func()
	// BurstSize is how many near-identical pending requests from one agent
	// make a burst shown as one row (default 3).
	BurstSize int
}

func (o *Options) defaults() {
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Theme == nil {
		o.Theme, _ = themes.ByName("default", true) // monochrome under NO_COLOR
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RecentGrants <= 0 {
		o.RecentGrants = 10 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.BurstSize <= 1 {
		o.BurstSize = 3
	}
}

// displayWidth is the width of s in terminal cells.
func displayWidth(s string) int { return ansi.StringWidth(s) }
