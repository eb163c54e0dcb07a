package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/tui"
	"github.com/writhq/writ/tui/signin"
)

// The console's screens work over the operator API unchanged.
var _ tui.Backend = (*client.Client)(nil)

// runRemoteConsole runs the console against a writ server: the same
// screens, through the operator API. Quitting it never affects agents.
func runRemoteConsole(cmd *cobra.Command, f consoleFlags) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	theme, err := pickTheme(f.theme)
	if err != nil {
		return err
	}
	notify, ok := tui.ParseNotify(f.notify)
	if !ok {
		return fmt.Errorf("--notify %q: want bell, osc9 or off", f.notify)
	}
	log, closeLog, err := openLog(userStateDir())
	if err != nil {
		return err
	}
	defer closeLog()
	var program atomic.Pointer[tea.Program]
	send := func(m tea.Msg) {
		if p := program.Load(); p != nil {
			p.Send(m)
		}
	}
	onConn := func(up bool, err error) {
		msg := tui.ConnectionMsg{Connected: up}
		if err != nil {
			msg.Err = err.Error()
		}
		send(msg)
	}
	rf := remoteFlags{server: f.server}
	r, err := connectRemote(ctx, &rf, log, onConn)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == exitUnauthorized {
		// Not signed in yet: sign in here, in the terminal, before the
		// console takes the screen.
		if err := runLogin(ctx, cmd, &rf, true); err != nil {
			return &ExitError{Code: exitCode(err), Err: err}
		}
		r, err = connectRemote(ctx, &rf, log, onConn)
	}
	if err != nil {
		return &ExitError{Code: exitCode(err), Err: err}
	}
	sess := r.session
	opts := tui.Options{
		Context: ctx, Theme: theme, Mouse: f.mouse, Notify: notify, Remote: true,
		APIAddr: r.Server(), LastOperator: &sess.Operator,
		Session: &tui.Session{Operator: r.Operator(), Expires: sess.Expiry},
	}
	// L signs in again here (device flow), for a new session or for the
	// recent sign-in the gravest actions need; the client then exchanges
	// the new ID token.
	kick := newStatusKick()
	opts.StandingChanged = kick.kick
	opts.SignIn = func() tui.SignInScreen {
		return &signInScreen{Model: signin.New(r.oc, signinStyles(theme)), signedIn: func(ns *operator.Session) {
			r.setSession(ns)
			r.Reauthenticate()
		}}
	}
	p := tea.NewProgram(tui.New(r.Client, opts), tea.WithContext(ctx))
	program.Store(p)
	if sess.Refreshable() {
		go r.oc.KeepAlive(ctx, sess, func(ns *operator.Session, err error) {
			if err != nil {
				send(tui.SessionEndedMsg{Reason: err.Error() + " · run `writ login` in another terminal"})
				return
			}
			r.setSession(ns)
			send(tui.SessionMsg{Session: tui.Session{Operator: r.Operator(), Expires: ns.Expiry}})
		})
	}
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go pollPolicyStatus(pctx, policyStatusEvery, kick, remotePolicyStatus(r.Client, time.Now), send)
	_, err = p.Run()
	stopPoll()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
