// Package tui is writ's approval console: a Bubble Tea v2 program where an
// on-call operator decides pending task requests, watches active grants,
// and revokes one grant, one agent, or everything at once.
//
// The root Model routes: window size, global keys (the emergency `!`
// among them), the dialog stack and toasts; everything else goes to the
// active page. Every call to the broker is a command built by a named
// function in commands.go; the live event stream is a re-armed command.
package tui

import (
	"context"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// Backend is what the console needs of the broker. *broker.Service
// implements it; tests use a fake with function fields.
type Backend interface {
	Config() *broker.Config
	IssuerState() broker.IssuerState
	Agents() []broker.AgentView
	Pending(ctx context.Context) ([]*broker.TaskRequest, error)
	Grants(ctx context.Context, recent time.Duration) ([]*broker.Grant, error)
	Request(ctx context.Context, id string) (*broker.TaskRequest, error)
	Grant(ctx context.Context, id string) (*broker.Grant, error)
	Audit(ctx context.Context, f broker.AuditFilter) ([]*broker.AuditEntry, error)
	VerifyAudit(ctx context.Context) (uint64, error)

	Approve(ctx context.Context, op broker.Operator, requestID string) (*broker.Grant, error)
	Narrow(ctx context.Context, op broker.Operator, requestID string, granted broker.Terms, reason string) (*broker.Grant, error)
	Deny(ctx context.Context, op broker.Operator, requestID, reason string) (*broker.Decision, error)
	Revoke(ctx context.Context, op broker.Operator, grantID, reason string) (*broker.Revocation, error)
	RevokeAgent(ctx context.Context, op broker.Operator, agentID, reason string, quarantine bool) (*broker.Revocation, error)
	Release(ctx context.Context, op broker.Operator, agentID string) error
	RevokeAll(ctx context.Context, op broker.Operator, reason string, freeze bool) (*broker.Revocation, error)
	Unfreeze(ctx context.Context, op broker.Operator, reason string) error
	// CreateStanding makes a standing approval from the operator's
	// approval of requestID, for d; RevokeStanding ends one.
	CreateStanding(ctx context.Context, op broker.Operator, requestID string, d time.Duration, reason string) (*broker.StandingApproval, error)
	RevokeStanding(ctx context.Context, op broker.Operator, id, reason string) (*broker.StandingApproval, error)

	Subscribe(ctx context.Context) <-chan broker.Event
}

// Session is a signed-in operator and when the sign-in stops being good
// for approvals.
type Session struct {
	Operator broker.Operator
	Expires  time.Time
}

// SessionMsg tells a running console that the operator signed in (again)
// or that the session was refreshed; cmd sends it with Program.Send when a
// session is renewed outside the console's own sign-in screen.
type SessionMsg struct{ Session Session }

// SessionEndedMsg tells the console that the session is gone (signed out,
// or the IdP refused a refresh): approvals pause until the operator signs
// in again; revocation keeps working under the last operator.
type SessionEndedMsg struct{ Reason string }

// PolicyMsg tells a running console what became of the policy file after
// it changed: reloaded (Err nil), or not (Err says where the file is
// wrong; the last good policy stays in force). cmd sends it from the
// policy watcher with Program.Send; the console shows the error in a
// banner until a good file loads.
type PolicyMsg struct {
	File  string
	Rules int
	Err   error
}

// SignInScreen is the sign-in flow the console shows when there is no
// session (tui/signin provides one; cmd adapts it). The console forwards
// every message to it while it is shown, and takes the session from Done
// after each update.
type SignInScreen interface {
	// Init starts the flow (device authorization, browser redirect).
	Init() tea.Cmd
	// Update handles a message and returns the next command.
	Update(msg tea.Msg) tea.Cmd
	// View renders the screen in the size last given to SetSize.
	View() string
	SetSize(width, height int)
	// Done returns the session once the operator has signed in.
	Done() (Session, bool)
}

// Notify says how the console tells an operator whose terminal is not
// focused that a request arrived.
type Notify int

const (
	// NotifyBell rings the terminal bell (the default).
	NotifyBell Notify = iota
	// NotifyOSC9 sends an OSC 9 desktop notification naming the agent,
	// for terminals that show them (iTerm2, kitty, WezTerm, foot, …).
	NotifyOSC9
	// NotifyOff stays quiet; the window title still counts the queue.
	NotifyOff
)

// ParseNotify parses "bell", "osc9" or "off".
func ParseNotify(s string) (Notify, bool) {
	switch s {
	case "", "bell":
		return NotifyBell, true
	case "osc9", "notification", "desktop":
		return NotifyOSC9, true
	case "off", "none":
		return NotifyOff, true
	}
	return 0, false
}
