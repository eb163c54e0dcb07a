package tui

import (
	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
)

// ConnectionMsg tells a remote console (Options.Remote) that its event
// stream connected (Connected, Err "") or lost the server (Err says why).
// cmd sends it with Program.Send from the backend's connection callback.
// While disconnected the header says so; on reconnect the stream resumes
// where it stopped, or the console reloads if the server cannot say.
type ConnectionMsg struct {
	Connected bool
	Err       string
}

func (m *Model) onConnection(msg ConnectionMsg) {
	a := m.a
	was := a.disconnected
	if msg.Connected {
		a.disconnected = ""
		if was != "" {
			a.say("reconnected to the server")
		}
		return
	}
	why := msg.Err
	if why == "" {
		why = "connection lost"
	}
	a.disconnected = Neutralise(why)
	if was == "" {
		a.fail("lost the server: " + a.disconnected + " · reconnecting; actions wait and are never applied twice")
	}
}

// quit leaves the console; the embedded one asks first, because quitting
// it stops the agent API every agent is using.
func (m *Model) quit() tea.Cmd {
	if !m.a.opts.AskBeforeQuit {
		return tea.Quit
	}
	m.a.push(&confirmDialog{
		title: "Quit writ?",
		body: "This console is the issuer: quitting stops the agent API and the revocation feed,\n" +
			"so agents can no longer ask for or use tokens. Run `writ serve` and attach consoles\n" +
			"with `writ console --server URL` to keep it up without a console.",
		yes:   "quit and stop the agent API",
		onYes: func(*app) tea.Cmd { return tea.Quit },
	})
	return nil
}

// ReasonFreshSignIn is the protocol reason of an action refused because
// the operator's sign-in is older than the server's fresh_auth window
// (RFC 9470 insufficient_user_authentication).
const ReasonFreshSignIn = "insufficient_user_authentication"

// actionError is what the console says about a failed action: a refusal
// for want of a recent sign-in says how to give one here.
func actionError(err error) string {
	if broker.ErrorReason(err) == ReasonFreshSignIn {
		return "this needs a recent sign-in: press L to sign in again, then retry"
	}
	return broker.ErrorMessage(err)
}
