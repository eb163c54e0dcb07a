package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/config"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/themes"
	"github.com/writhq/writ/tui"
	"github.com/writhq/writ/tui/signin"
)

// consoleFlags are the flags of `writ console`; `writ demo` shares the
// display ones.
type consoleFlags struct {
	serve    serveFlags
	oidc     operator.Config
	scopes   string
	remember bool
	theme    string
	mouse    bool
	notify   string
	server   string // --server: attach to a running writ serve
}

func (f *consoleFlags) addDisplay(fl *pflag.FlagSet) {
	fl.StringVar(&f.theme, "theme", "default", "colour theme: default, high-contrast or monochrome (NO_COLOR forces monochrome)")
	fl.BoolVar(&f.mouse, "mouse", false, "click to select and scroll with the wheel")
	fl.StringVar(&f.notify, "notify", "bell", "how to tell you about a new request while the terminal is not focused: bell, osc9 or off")
}

func (f *consoleFlags) addOIDC(fl *pflag.FlagSet) {
	fl.StringVar(&f.oidc.Issuer, "oidc-issuer", "", "your identity provider's issuer URL (env WRIT_OIDC_ISSUER)")
	fl.StringVar(&f.oidc.ClientID, "oidc-client-id", "", "writ's client id at the identity provider (env WRIT_OIDC_CLIENT_ID)")
	fl.StringVar(&f.oidc.ClientSecret, "oidc-client-secret", "", "client secret, for a confidential client (env WRIT_OIDC_CLIENT_SECRET)")
	fl.StringVar(&f.scopes, "oidc-scopes", "openid profile email", "scopes to ask for; add offline_access for a refresh token")
	fl.StringVar(&f.oidc.ApproverGroup, "approver-group", operator.DefaultApproverGroup, "group an operator must be in to approve")
	fl.StringVar(&f.oidc.GroupsClaim, "groups-claim", operator.DefaultGroupsClaim, "ID-token claim holding the groups (a dotted path for nested claims)")
	fl.StringVar(&f.oidc.Login, "login", operator.LoginDevice, "sign-in flow: device (works over SSH) or browser (loopback redirect)")
	fl.BoolVar(&f.remember, "remember-session", false, "keep the session in a 0600 file in the XDG state dir across restarts")
}

func init() {
	var f consoleFlags
	console := &cobra.Command{
		Use:   "console",
		Short: "The operator's console, with the issuer and agent API embedded",
		Long: `Run the approval console: sign in with your identity provider, then decide
pending task requests, watch active grants and revoke — one grant, one agent,
or everything with '!'. The agent API is served on --listen meanwhile, exactly
as 'writ serve' serves it.

  writ console --oidc-issuer https://idp.example.com --oidc-client-id writ`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConsoleConfig(cmd); err != nil {
				return err
			}
			if f.server != "" {
				return runRemoteConsole(cmd, f)
			}
			if f.oidc.Issuer == "" || f.oidc.ClientID == "" {
				return errors.New("writ console signs operators in with OIDC: set --oidc-issuer and --oidc-client-id (or try 'writ demo', which brings its own development provider)")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			state := userStateDir()
			log, closeLog, err := openLog(state)
			if err != nil {
				return err
			}
			defer closeLog()
			f.oidc.Scopes = operator.ParseScopes(f.scopes)
			f.oidc.Remember = f.remember
			f.oidc.Logger = log
			client, err := operator.New(f.oidc)
			if err != nil {
				return err
			}
			ln, issuer, err := listen(f.serve)
			if err != nil {
				return err
			}
			defer ln.Close()
			env, err := openServingBroker(ctx, broker.Options{Issuer: issuer, Logger: log}, f.serve.policy)
			if err != nil {
				return err
			}
			defer env.Close()
			return runConsole(ctx, consoleRun{flags: f, env: env, ln: ln, issuer: issuer, client: client, log: log, stateDir: state})
		},
	}
	fl := console.Flags()
	fl.StringVar(&f.serve.listen, "listen", DefaultListen, "address of the agent API (env WRIT_LISTEN)")
	fl.StringVar(&f.serve.publicURL, "public-url", "", "the issuer URL agents use (default http(s)://<listen>; env WRIT_PUBLIC_URL)")
	fl.StringVar(&f.serve.tlsCert, "tls-cert", "", "TLS certificate file (PEM) for the agent API")
	fl.StringVar(&f.serve.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fl.BoolVar(&f.serve.requireDPoP, "require-dpop", false, "mint only DPoP-bound tokens, whatever the configuration says")
	addPolicyFlag(fl, &f.serve.policy)
	f.addOIDC(fl)
	f.addDisplay(fl)
	fl.StringVar(&f.server, "server", "", "attach to a running `writ serve` at this URL instead of embedding the issuer (env WRIT_SERVER); quitting then never affects agents")
	rootCmd.AddCommand(console)
}

// listen opens the agent API's listener and works out the issuer URL.
func listen(f serveFlags) (net.Listener, string, error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, "", errors.New("--tls-cert and --tls-key go together")
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	issuer, err := f.publicURLFor(ln.Addr())
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, issuer, nil
}

// userStateDir is where a real console keeps its log and remembered
// operator: $XDG_STATE_HOME/writ. The demo keeps its own in a temporary
// directory, so nothing of it reaches a real console.
func userStateDir() string { return filepath.Join(xdgDir("XDG_STATE_HOME", ".local/state"), "writ") }

// openLog sends logs to a file in the state dir: the console draws on
// the terminal, so nothing may write to it. Libraries that log through
// slog.Default go there too.
func openLog(dir string) (*slog.Logger, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	path := filepath.Join(dir, "writ.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open log %s: %w", path, err)
	}
	log := slog.New(slog.NewTextHandler(f, nil))
	prev := slog.Default()
	slog.SetDefault(log)
	return log, func() { slog.SetDefault(prev); f.Close() }, nil
}

// consoleRun is what the console needs to run.
type consoleRun struct {
	flags  consoleFlags
	env    *brokerEnv
	ln     net.Listener
	issuer string
	client *operator.Client
	log    *slog.Logger
	// stateDir holds the log and the remembered operator.
	stateDir string
	// background are extra goroutines to run while the console is open
	// (the demo's agents and resource server); each gets the console's context.
	background []func(context.Context)
	// afterSignIn runs (off the UI goroutine, with the console's context)
	// each time an operator signs in; the demo makes its standing
	// approval there.
	afterSignIn func(context.Context, broker.Operator)
}

// runConsole serves the agent API and runs the console until the
// operator quits or ctx ends.
func runConsole(ctx context.Context, r consoleRun) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.flags.serve.requireDPoP {
		r.env.Config.RequireDPoP = true
	}
	api, err := newAgentAPI(r.env, r.issuer, r.env.Config.RequireDPoP, r.log)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		serveErr <- serveAPI(ctx, r.env, api, r.ln, r.flags.serve.tlsCert, r.flags.serve.tlsKey, r.log)
	})
	for _, fn := range r.background {
		wg.Go(func() { fn(ctx) })
	}
	defer wg.Wait()
	defer cancel()

	theme, err := pickTheme(r.flags.theme)
	if err != nil {
		return err
	}
	notify, ok := tui.ParseNotify(r.flags.notify)
	if !ok {
		return fmt.Errorf("--notify %q: want bell, osc9 or off", r.flags.notify)
	}
	kick := newStatusKick()
	// Each sign-in replaces the previous session's refresher.
	var program *tea.Program
	var mu sync.Mutex
	stopRefresh := func() {}
	signedIn := func(sess *operator.Session) {
		saveLastOperator(r.stateDir, r.lastOperatorKey(), sess.Operator, r.log)
		mu.Lock()
		defer mu.Unlock()
		stopRefresh()
		rctx, stop := context.WithCancel(ctx)
		stopRefresh = stop
		wg.Go(func() { keepSessionAlive(rctx, r.client, sess, func(m tea.Msg) { program.Send(m) }) })
		if r.afterSignIn != nil {
			wg.Go(func() {
				r.afterSignIn(ctx, sess.Operator)
				kick.kick()
			})
		}
	}
	opts := tui.Options{
		Context: ctx, Theme: theme, Mouse: r.flags.mouse, Notify: notify,
		APIAddr: r.issuer, LastOperator: loadLastOperator(r.stateDir, r.lastOperatorKey(), r.client.Dev()), AskBeforeQuit: true,
		SignIn: func() tui.SignInScreen {
			return &signInScreen{Model: signin.New(r.client, signinStyles(theme)), signedIn: signedIn}
		},
	}
	opts.StandingChanged = kick.kick
	var resumed *operator.Session
	if r.client.Remember() {
		if sess, err := r.client.Resume(ctx); err == nil {
			resumed = sess
			opts.Session = &tui.Session{Operator: sess.Operator, Expires: sess.Expiry}
		}
	}
	program = tea.NewProgram(tui.New(r.env.Service, opts), tea.WithContext(ctx))
	r.env.policyEvents.set(func(p *policy.Policy, err error) {
		program.Send(tui.PolicyMsg{File: p.Name(), Rules: p.Len(), Err: err})
		if err == nil {
			go sendPolicyReplay(ctx, program.Send, r.env, p)
		}
	})
	if resumed != nil {
		signedIn(resumed)
	}
	wg.Go(func() { pollPolicyStatus(ctx, policyStatusEvery, kick, localPolicyStatus(r.env), program.Send) })
	_, err = program.Run()
	cancel()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		err = nil
	}
	select {
	case e := <-serveErr:
		if err == nil {
			err = e
		}
	default:
	}
	return err
}

// signInScreen adapts the sign-in screens to the console, and hands the
// full session (with its refresh token) to signedIn once.
type signInScreen struct {
	*signin.Model
	signedIn func(*operator.Session)
	once     sync.Once
}

func (s *signInScreen) Done() (tui.Session, bool) {
	sess, ok := s.Model.Done()
	if !ok {
		return tui.Session{}, false
	}
	s.once.Do(func() { s.signedIn(sess) })
	return tui.Session{Operator: sess.Operator, Expires: sess.Expiry}, true
}

// keepSessionAlive refreshes the operator session while the console runs
// and tells the console when it is renewed or ends.
func keepSessionAlive(ctx context.Context, c *operator.Client, s *operator.Session, send func(tea.Msg)) {
	c.KeepAlive(ctx, s, func(ns *operator.Session, err error) {
		if err != nil {
			send(tui.SessionEndedMsg{Reason: err.Error()})
			return
		}
		send(tui.SessionMsg{Session: tui.Session{Operator: ns.Operator, Expires: ns.Expiry}})
	})
}

func pickTheme(name string) (*themes.Theme, error) {
	if themes.NoColor() {
		return themes.Monochrome(), nil
	}
	return themes.ByName(name, true)
}

// signinStyles fills the sign-in screens' styles from the console's theme.
func signinStyles(th *themes.Theme) signin.Styles {
	s := signin.DefaultStyles()
	s.Title, s.Text, s.Muted, s.Strong = th.Title, th.Text, th.Muted, th.Strong
	s.Code = th.Strong.Border(lipgloss.DoubleBorder()).Padding(0, 2)
	s.URL = th.Text.Underline(true)
	s.Dev, s.Warn, s.Error, s.OK = th.Banner, th.Warn, th.Error, th.OK
	s.HelpKey, s.Help = th.HelpKey, th.HelpDesc
	return s
}

// lastOperatorKey names the store and the identity provider a remembered
// operator belongs to: whoever signed in to one store at one provider is
// nobody at another.
func (r consoleRun) lastOperatorKey() string {
	path := r.env.Store.Path()
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path + " " + r.client.Issuer()
}

func lastOperatorPath(dir string) string { return filepath.Join(dir, "last-operator.json") }

// loadLastOperator returns who signed in last to this store at this
// provider, under whom revocations are audited while nobody is signed in.
// A development identity is returned only to a development sign-in. The
// file holds no secret.
func loadLastOperator(dir, key string, dev bool) *broker.Operator {
	b, err := os.ReadFile(lastOperatorPath(dir))
	if err != nil {
		return nil
	}
	var known map[string]broker.Operator
	if json.Unmarshal(b, &known) != nil {
		return nil // an older single-operator file: nobody is remembered
	}
	op, ok := known[key]
	if !ok || op.Subject == "" || (op.Dev && !dev) {
		return nil
	}
	return &op
}

func saveLastOperator(dir, key string, op broker.Operator, log *slog.Logger) {
	known := map[string]broker.Operator{}
	if b, err := os.ReadFile(lastOperatorPath(dir)); err == nil {
		_ = json.Unmarshal(b, &known) // an unreadable file is replaced
	}
	known[key] = op
	b, err := json.Marshal(known)
	if err == nil {
		err = writeFileAtomic(lastOperatorPath(dir), b, 0o600)
	}
	if err != nil {
		log.Warn("remember the last operator", "err", err)
	}
}

// writeFileAtomic writes a file through a temporary one and a rename, so
// a crash never leaves it half-written.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// applyConsoleConfig fills the flags that were given neither on the
// command line nor in the environment from the configuration file's
// console section.
func applyConsoleConfig(cmd *cobra.Command) error {
	path := configPath()
	if path == "" {
		return nil
	}
	c, err := config.LoadConsole(path)
	if err != nil {
		return err
	}
	boolStr := func(b *bool) string {
		if b == nil {
			return ""
		}
		return strconv.FormatBool(*b)
	}
	values := map[string]string{
		"theme": c.Theme, "notify": c.Notify, "mouse": boolStr(c.Mouse),
		"oidc-issuer": c.OIDC.Issuer, "oidc-client-id": c.OIDC.ClientID, "oidc-scopes": c.OIDC.Scopes,
		"approver-group": c.OIDC.ApproverGroup, "groups-claim": c.OIDC.GroupsClaim, "login": c.OIDC.Login,
		"remember-session": boolStr(c.OIDC.RememberSession),
	}
	for name, v := range values {
		f := cmd.Flags().Lookup(name)
		if f == nil || f.Changed || v == "" {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("%s: console.%s: %w", path, name, err)
		}
	}
	return nil
}
