package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/operator"
)

// Exit codes of the operator CLI, for scripts.
const (
	exitError        = 1 // anything else
	exitUsage        = 2 // wrong arguments, or confirmation refused / needed
	exitUnauthorized = 3 // not signed in, session ended, or a fresh sign-in needed
	exitForbidden    = 4 // signed in but not allowed
	exitNotFound     = 5 // no such request, grant or agent
	exitConflict     = 6 // already decided, frozen, expired: the state did not allow it
	exitUnreachable  = 7 // the server (or the identity provider) cannot be reached
)

// ExitError carries an exit code out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// exitCode is the exit code for an error of an operator CLI command.
func exitCode(err error) int {
	var ee *ExitError
	var ue *client.UnreachableError
	var oe *operator.UnreachableError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue), errors.As(err, &oe):
		return exitUnreachable
	}
	switch broker.ErrorCode(err) {
	case broker.EUNAUTHORIZED:
		return exitUnauthorized
	case broker.EFORBIDDEN:
		return exitForbidden
	case broker.ENOTFOUND:
		return exitNotFound
	case broker.ECONFLICT, broker.EFROZEN, broker.EEXPIRED:
		return exitConflict
	case broker.EINVALID:
		return exitUsage
	}
	return exitError
}

// remoteFlags are shared by every command that talks to a writ server.
type remoteFlags struct {
	server string
	json   bool
	yes    bool
}

func (f *remoteFlags) add(fl *pflag.FlagSet, confirm bool) {
	fl.StringVar(&f.server, "server", "", "writ's URL (env WRIT_SERVER; default: the server of the last `writ login`)")
	fl.BoolVar(&f.json, "json", false, "print JSON for scripts")
	if confirm {
		fl.BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	}
}

// remoteState is what `writ login` remembers besides the session: which
// server. It holds no secret.
type remoteState struct {
	Server string `json:"server"`
}

func remoteStatePath() string {
	return filepath.Join(xdgDir("XDG_STATE_HOME", ".local/state"), "writ", "remote.json")
}

func loadRemoteState() remoteState {
	var st remoteState
	if b, err := os.ReadFile(remoteStatePath()); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func saveRemoteState(st remoteState) error {
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(remoteStatePath()), 0o700); err != nil {
		return err
	}
	return os.WriteFile(remoteStatePath(), b, 0o600)
}

// serverURL is --server, else the last login's server.
func (f *remoteFlags) serverURL() (string, error) {
	if f.server != "" {
		return strings.TrimSuffix(f.server, "/"), nil
	}
	if s := loadRemoteState().Server; s != "" {
		return s, nil
	}
	return "", &ExitError{Code: exitUnauthorized, Err: errors.New("no server: sign in first with `writ login --server URL`")}
}

// operatorClient is the OIDC client for the provider the server names,
// keeping its session in the 0600 session file.
func operatorClient(ctx context.Context, server string, log *slog.Logger) (*operator.Client, error) {
	li, err := client.LoginInfo(ctx, server, nil)
	if err != nil {
		return nil, err
	}
	if li.OIDCIssuer == "" {
		return nil, fmt.Errorf("%s has no operator sign-in configured (start writ serve with --oidc-issuer)", server)
	}
	return operator.New(operator.Config{Issuer: li.OIDCIssuer, ClientID: li.ClientID, ApproverGroup: li.ApproverGroup,
		GroupsClaim: li.GroupsClaim, Remember: true, Logger: log,
		Scopes: []string{"openid", "profile", "email", "offline_access"}})
}

// remote is a signed-in operator API client for a command.
type remote struct {
	*client.Client
	oc  *operator.Client
	log *slog.Logger

	mu      sync.Mutex
	session *operator.Session
}

// setSession replaces the session after a refresh or a new sign-in; a
// refresh of an older sign-in never replaces a more recent one.
func (r *remote) setSession(s *operator.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.session != nil && s.Operator.AuthTime.Before(r.session.Operator.AuthTime) {
		return
	}
	r.session = s
}

// idToken is the session's ID token for the exchange at the server,
// refreshed when it nears its end. A provider that cannot be reached does
// not end a session that is still good: its token is used until its own
// expiry, and only then must the operator sign in again.
func (r *remote) idToken(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.oc.Now()
	if r.session.Remaining(now) < 30*time.Second {
		ns, err := r.oc.Refresh(ctx, r.session)
		var ue *operator.UnreachableError
		switch {
		case err == nil:
			r.session = ns
		case errors.As(err, &ue) && !r.session.Ended(now):
			r.log.Warn("operator session refresh failed; using the session until it ends", "err", err,
				"expires", r.session.Expiry)
		default:
			return "", &ExitError{Code: exitUnauthorized, Err: fmt.Errorf("the operator session ended (%v): run `writ login`", err)}
		}
	}
	return r.session.IDToken(), nil
}

// connectRemote resumes the remembered session and signs in at the server.
func connectRemote(ctx context.Context, f *remoteFlags, log *slog.Logger, onConn func(bool, error)) (*remote, error) {
	server, err := f.serverURL()
	if err != nil {
		return nil, err
	}
	oc, err := operatorClient(ctx, server, log)
	if err != nil {
		return nil, err
	}
	sess, err := oc.Resume(ctx)
	if err != nil {
		if errors.Is(err, operator.ErrNoSession) || broker.ErrorCode(err) == broker.EUNAUTHORIZED {
			return nil, &ExitError{Code: exitUnauthorized, Err: fmt.Errorf("not signed in to %s: run `writ login --server %s`", server, server)}
		}
		return nil, err
	}
	r := &remote{session: sess, oc: oc, log: log}
	c, err := client.New(client.Options{Server: server, Logger: log, OnConnection: onConn, IDToken: r.idToken})
	if err != nil {
		return nil, err
	}
	if err := c.SignIn(ctx); err != nil {
		return nil, err
	}
	r.Client = c
	return r, nil
}

// confirm asks before a destructive action unless --yes; without a
// terminal to ask on, it refuses.
func confirm(cmd *cobra.Command, f *remoteFlags, what string) error {
	if f.yes {
		return nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !isTerminal(in) {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("%s: not asked on a terminal; pass --yes to confirm", what)}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType yes to confirm: ", what)
	line, _ := readLine(in)
	if strings.TrimSpace(strings.ToLower(line)) != "yes" {
		return &ExitError{Code: exitUsage, Err: errors.New("not confirmed: nothing was done")}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < 256 {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
	return b.String(), nil
}

// runRemote runs fn with a signed-in client, under a context that ends
// on an interrupt, and turns its error into the CLI's exit code.
func runRemote(cmd *cobra.Command, f *remoteFlags, fn func(ctx context.Context, r *remote) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := connectRemote(ctx, f, log, nil)
	if err == nil {
		err = fn(ctx, r)
	}
	if err != nil {
		return &ExitError{Code: exitCode(err), Err: err}
	}
	return nil
}

func init() {
	var f remoteFlags
	var fresh bool
	login := &cobra.Command{
		Use:   "login --server URL",
		Short: "Sign in to a writ server as an operator (device flow; the session is kept in a 0600 file)",
		Long: `Sign in at the identity provider the writ server names, with the device
authorization grant: open the printed URL on any device, enter the code, sign
in. The session (ID and refresh tokens) is kept in a 0600 file in the XDG state
directory, and the server is remembered, so later commands need no flags:

  writ login --server https://writ.example.com
  writ requests ls
  writ console --server https://writ.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := runLogin(ctx, cmd, &f, fresh)
			if err != nil {
				return &ExitError{Code: exitCode(err), Err: err}
			}
			return nil
		},
	}
	f.add(login.Flags(), false)
	login.Flags().BoolVar(&fresh, "fresh", false, "sign in again even when a session is remembered (for the actions that need a recent sign-in)")
	rootCmd.AddCommand(login)

	var lf remoteFlags
	logout := &cobra.Command{
		Use:   "logout",
		Short: "Forget the remembered operator session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			server, err := lf.serverURL()
			if err != nil {
				return err
			}
			oc, err := operatorClient(ctx, server, slog.New(slog.DiscardHandler))
			if err != nil {
				return &ExitError{Code: exitCode(err), Err: err}
			}
			oc.Forget()
			fmt.Fprintln(cmd.OutOrStdout(), "signed out: the session file is removed")
			return nil
		},
	}
	lf.add(logout.Flags(), false)
	rootCmd.AddCommand(logout)
}

func runLogin(ctx context.Context, cmd *cobra.Command, f *remoteFlags, fresh bool) error {
	server, err := f.serverURL()
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	oc, err := operatorClient(ctx, server, log)
	if err != nil {
		return err
	}
	if !fresh {
		if sess, err := oc.Resume(ctx); err == nil {
			if err := saveRemoteState(remoteState{Server: server}); err != nil {
				return err
			}
			return reportLogin(ctx, cmd, f, server, sess, oc, "already signed in")
		}
	}
	// Discovery and the device code can take a while against a slow
	// provider (each call is bounded): say what is happening meanwhile.
	fmt.Fprintf(cmd.ErrOrStderr(), "Contacting the identity provider at %s…\n", oc.Issuer())
	da, err := oc.StartDevice(ctx)
	if err != nil {
		return loginUnreachable(err)
	}
	// The URL on a line of its own, unbroken, so it can be copied whole.
	fmt.Fprintf(cmd.ErrOrStderr(), "To sign in, open this URL on any device:\n\n%s\n\nand check that it shows the code  %s\nWaiting…\n",
		da.VerificationURIComplete, da.UserCode)
	sess, err := oc.WaitDevice(ctx, da)
	if err != nil {
		return loginUnreachable(err)
	}
	if err := saveRemoteState(remoteState{Server: server}); err != nil {
		return err
	}
	return reportLogin(ctx, cmd, f, server, sess, oc, "signed in")
}

// loginUnreachable adds what to do to a sign-in the identity provider did
// not answer; other errors pass through.
func loginUnreachable(err error) error {
	var ue *operator.UnreachableError
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%w\ncheck that %s is up and reachable from here, then run `writ login` again (approvals wait until you can sign in)", err, ue.Issuer)
}

// reportLogin exchanges the ID token once, to prove the server accepts
// it, and says who is signed in.
func reportLogin(ctx context.Context, cmd *cobra.Command, f *remoteFlags, server string, sess *operator.Session, oc *operator.Client, verb string) error {
	c, err := client.New(client.Options{Server: server, IDToken: func(context.Context) (string, error) { return sess.IDToken(), nil }})
	if err != nil {
		return err
	}
	if err := c.SignIn(ctx); err != nil {
		return fmt.Errorf("the server refused the sign-in: %w", err)
	}
	if f.json {
		return printJSON(cmd.OutOrStdout(), map[string]any{"server": server, "operator": c.Operator(), "expires": sess.Expiry.UTC(),
			"refreshable": sess.Refreshable()})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s to %s as %s; session until %s\n", verb, server, c.Operator().Display(),
		sess.Expiry.Local().Format(time.DateTime))
	return nil
}
