package cmd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/demo"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
	"github.com/writhq/writ/broker/policy"
)

// demoFlags are the flags of `writ demo`.
type demoFlags struct {
	console consoleFlags
	pace    time.Duration
	step    time.Duration
	instant bool
}

func init() {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try writ: the console with simulated agents, a guarded API and a development IdP",
		Long: `Run the whole story on this machine, on loopback only:

  - a temporary store (or --db), and the agent API on a free loopback port;
  - a development OpenID Provider, through which the demo operator
    (Dana Demo, in the approver group) signs in: the console shows the device
    code, and the provider approves it after a moment, as a person would;
  - simulated agents with their own keys that ask for plausible tasks over
    the real agent API (CIBA, DPoP), including follow-on requests and one
    agent that asks for more than its intent needs;
  - a resource server protected by the guard, which the agents call with
    their tokens, so uses, refusals after revocation and task completion
    show up live;
  - a policy (broker/demo/policy.yaml, or --policy FILE) that refuses the
    triage bot's secrets, caps refunds at 10 minutes, approves the docs
    bot's read-only tasks by itself and flags follow-ons that widen.

Approve with a, narrow with n, deny with d, revoke with r, or press ! twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConsoleConfig(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.console.serve.listen, "listen", "127.0.0.1:0", "address of the agent API (default: a free loopback port)")
	fl.DurationVar(&f.pace, "pace", 20*time.Second, "mean pause between one agent's tasks")
	fl.DurationVar(&f.step, "step", 4*time.Second, "mean pause between an agent's calls within a task")
	fl.BoolVar(&f.instant, "instant-sign-in", false, "sign the demo operator in at once instead of after a moment on the device-code screen")
	addPolicyFlag(fl, &f.console.serve.policy)
	f.console.addDisplay(fl)
	rootCmd.AddCommand(cmd)
}

func runDemo(ctx context.Context, f demoFlags) error {
	// The demo is sealed: its store (unless --db), log and remembered
	// operator live in a temporary directory of its own, so its
	// development operator never reaches a real console's state.
	state, err := os.MkdirTemp("", "writ-demo-")
	if err != nil {
		return fmt.Errorf("demo state directory: %w", err)
	}
	defer os.RemoveAll(state)
	log, closeLog, err := openLog(state)
	if err != nil {
		return err
	}
	defer closeLog()
	if globals.dbPath == "" {
		globals.dbPath = filepath.Join(state, "writ.db")
	}

	// The resource server's address names the demo's resources, so it comes first.
	rsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo resource server: %w", err)
	}
	defer rsLn.Close()
	setup, err := demo.NewSetup("http://" + rsLn.Addr().String())
	if err != nil {
		return err
	}
	ln, issuer, err := listen(f.console.serve)
	if err != nil {
		return err
	}
	defer ln.Close()
	opts := broker.Options{Issuer: issuer, Logger: log}
	var builtin *policy.Fixed
	if f.console.serve.policy == "" {
		// The demo's own policy; --policy runs another (and reloads it).
		p, err := demo.Policy()
		if err != nil {
			return err
		}
		builtin = policy.NewFixed(p)
		opts.Policy = builtin
	}
	env, err := openBrokerWith(ctx, setup.Config, "", opts, f.console.serve.policy)
	if err != nil {
		return err
	}
	defer env.Close()
	env.builtinPolicy = builtin

	var idpRef atomic.Pointer[devidp.Provider]
	idpOpts := devidp.Options{OnDeviceCode: func(code string) {
		// Play the person who enters the code on their phone.
		go func() {
			time.Sleep(2 * time.Second)
			if p := idpRef.Load(); p != nil {
				if err := p.ApproveDevice(code, devidp.Dana); err != nil {
					log.Warn("demo sign-in", "err", err)
				}
			}
		}()
	}}
	if f.instant {
		idpOpts = devidp.Options{AutoApprove: devidp.Dana}
	}
	idp, err := devidp.Start(ctx, idpOpts)
	if err != nil {
		return err
	}
	idpRef.Store(idp)
	defer idp.Close()
	client, err := operator.New(operator.Config{Issuer: idp.Issuer(), ClientID: devidp.ClientID, Dev: true,
		Scopes: []string{"openid", "profile", "email", "offline_access"}, Logger: log})
	if err != nil {
		return err
	}

	rs, err := demo.NewResourceServer(setup, issuer, nil, log)
	if err != nil {
		return err
	}
	// The guarded deploy MCP server, where deploy-bot steps up.
	if err := rs.AddMCP(setup, log); err != nil {
		return err
	}
	fleet := &demo.Fleet{Setup: setup, Issuer: issuer, Pace: f.pace, Step: f.step, Logger: log}
	var seeded sync.Once
	return runConsole(ctx, consoleRun{flags: f.console, env: env, ln: ln, issuer: issuer, client: client, log: log, stateDir: state,
		// Once the operator is signed in, the analyst's weekly query
		// becomes standing, under that operator, so the Policy page
		// shows a standing approval and its uses.
		afterSignIn: func(ctx context.Context, op broker.Operator) {
			seeded.Do(func() {
				if sa, err := demo.SeedStanding(ctx, env.Service, setup, op); err != nil {
					log.Warn("demo standing approval", "err", err)
				} else {
					log.Info("demo standing approval", "standing", sa.ID, "agent", sa.AgentID)
				}
			})
		},
		background: []func(context.Context){
			func(ctx context.Context) {
				if err := rs.Serve(ctx, rsLn); err != nil {
					log.Error("demo resource server", "err", err)
				}
			},
			func(ctx context.Context) {
				if err := fleet.Run(ctx); err != nil {
					log.Error("demo agents", "err", err)
				}
			},
		}})
}
