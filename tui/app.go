package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/themes"
)

// app is what the root model shares with its pages and dialogs: the
// broker, the data, the theme, the clock, the operator, and the dialog
// and toast stacks. Pages change the console only through it.
type app struct {
	b    Backend
	ctx  context.Context
	opts Options
	th   *themes.Theme
	keys keyMap
	d    *data
	now  time.Time

	session      *Session
	sessionEnded string // why the last session ended; "" while live or never signed in
	lastOp       *broker.Operator
	policyErr    string // why the policy file did not reload, neutralised; "" when it is in force
	policyReplay string // what the reloaded policy would have changed over the last day, neutralised; "" for none yet
	// disconnected says why a remote console lost its server, neutralised;
	// "" while connected (and always for the embedded console).
	disconnected string
	// standingMax is the longest standing approval the broker accepts, as
	// it last said; 0 until it has.
	standingMax time.Duration

	dialogs []dialog
	toasts  []toast
}

// toast is a short message under the page.
type toast struct {
	text  string
	err   bool
	until time.Time
}

// toastFor is how long a toast stays.
const toastFor = 6 * time.Second

// say shows a message.
func (a *app) say(text string) {
	a.toasts = append(a.toasts, toast{text: text, until: a.now.Add(toastFor)})
	if len(a.toasts) > 3 {
		a.toasts = a.toasts[len(a.toasts)-3:]
	}
}

// fail shows an error; it stays twice as long as a message.
func (a *app) fail(text string) {
	a.toasts = append(a.toasts, toast{text: text, err: true, until: a.now.Add(2 * toastFor)})
	if len(a.toasts) > 3 {
		a.toasts = a.toasts[len(a.toasts)-3:]
	}
}

// push opens a dialog on top of the stack.
func (a *app) push(d dialog) { a.dialogs = append(a.dialogs, d) }

// operator returns the signed-in operator while the session is good.
func (a *app) operator() (broker.Operator, bool) {
	if a.session == nil || (!a.session.Expires.IsZero() && !a.now.Before(a.session.Expires)) {
		return broker.Operator{}, false
	}
	return a.session.Operator, true
}

// revoker is who a revocation is audited under: the live session, else the
// operator who last signed in. Revocation never waits for a sign-in.
func (a *app) revoker() broker.Operator {
	if op, ok := a.operator(); ok {
		return op
	}
	if a.session != nil {
		return a.session.Operator
	}
	if a.lastOp != nil {
		return *a.lastOp
	}
	return broker.Operator{Issuer: "writ-console", Subject: "unidentified-operator"}
}

// needSession returns an explanation when approving is not possible now.
func (a *app) needSession(what string) (string, bool) {
	if _, ok := a.operator(); ok {
		return "", true
	}
	if a.session != nil || a.sessionEnded != "" {
		return "session expired: " + what + " paused · press L to sign in again", false
	}
	return "not signed in: " + what + " wait for a signed-in operator · press L to sign in", false
}

// setSession starts a (new) session.
func (a *app) setSession(s Session) {
	a.session = &s
	op := s.Operator
	a.lastOp = &op
	a.sessionEnded = ""
}

// pendingCount is shown in the window title and the tab.
func (a *app) pendingCount() int { return len(a.d.pending) }

// notify tells an unfocused operator that requests arrived.
func (a *app) notify(agentID string, n int) tea.Cmd {
	switch a.opts.Notify {
	case NotifyOff:
		return nil
	case NotifyOSC9:
		text := "writ: " + Neutralise(agentID) + " asks for approval"
		if n > 1 {
			text = "writ: " + plural(n, "new request") + " waiting"
		}
		return tea.Raw(osc9(text))
	}
	return tea.Raw("\a")
}

// osc9 is the OSC 9 desktop notification sequence. The text is already
// neutralised; ';' and controls cannot end the sequence early.
func osc9(text string) string { return "\x1b]9;" + text + "\x07" }
