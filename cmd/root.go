// Package cmd is writ's command tree: flags, environment, configuration
// file, and the wiring of the packages. It holds no domain logic.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/config"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/store"
)

// Version is set at build time with -ldflags "-X github.com/writhq/writ/cmd.Version=…".
var Version = "dev"

// globals are the flags every command shares.
var globals struct {
	configPath string
	dbPath     string
	lockWait   time.Duration
	signingAlg string
}

var rootCmd = &cobra.Command{
	Use:   "writ",
	Short: "Task-scoped, operator-approved tokens for AI agents",
	Long: `writ is a terminal approval console with an embedded token issuer for AI agents.
Agents ask for task-scoped tokens; an on-call operator approves, narrows or denies
each request; writ mints a short-lived, sender-bound token for that one task and
revokes it live.`,
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
		return applyEnv(cmd)
	},
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&globals.configPath, "config", "", "configuration file (default $XDG_CONFIG_HOME/writ/writ.yaml; env WRIT_CONFIG)")
	pf.StringVar(&globals.dbPath, "db", "", "store file (default $XDG_DATA_HOME/writ/writ.db; env WRIT_DB)")
	pf.DurationVar(&globals.lockWait, "lock-timeout", 2*time.Second, "how long to wait for a store another process holds")
	pf.StringVar(&globals.signingAlg, "signing-alg", string(broker.DefaultAlg), "algorithm of the first signing key of a new store: ES256, EdDSA or RS256 (an existing store keeps its key until `writ keys rotate`)")
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print writ's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "writ", Version)
		},
	})
}

// Execute runs the command line and exits non-zero on error.
func Execute() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "writ:", err)
		code := 1
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		os.Exit(code)
	}
}

// applyEnv fills every flag the user did not set from WRIT_<FLAG> (dashes
// become underscores: --public-url ← WRIT_PUBLIC_URL).
func applyEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "WRIT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			// Set through the flag set, so the flag counts as given and a
			// configuration file does not override it.
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "."
	}
	return filepath.Join(home, fallback)
}

// DefaultConfigPath is where writ looks for its configuration.
func DefaultConfigPath() string {
	return filepath.Join(xdgDir("XDG_CONFIG_HOME", ".config"), "writ", "writ.yaml")
}

// DefaultDBPath is where writ keeps its store.
func DefaultDBPath() string {
	return filepath.Join(xdgDir("XDG_DATA_HOME", ".local/share"), "writ", "writ.db")
}

// loadConfig reads the configuration: the --config file, or the default
// file if it exists, or an empty configuration (no agents yet).
func loadConfig() (*broker.Config, string, error) {
	path := configPath()
	if path == "" {
		return &broker.Config{Limits: broker.DefaultLimits}, "", nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, path, err
	}
	return cfg, path, nil
}

// configPath is the configuration file in use: --config, or the default
// file if it exists, or "" for none.
func configPath() string {
	if globals.configPath != "" {
		return globals.configPath
	}
	// A default that is not there (ENOTDIR: a file where a directory of the
	// path should be) means no configuration; any other trouble reading it
	// is reported when it is loaded.
	if _, err := os.Stat(DefaultConfigPath()); errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ""
	}
	return DefaultConfigPath()
}

func dbPath() string {
	if globals.dbPath != "" {
		return globals.dbPath
	}
	return DefaultDBPath()
}

// openStore opens the store at --db.
func openStore() (*store.Store, error) {
	return store.Open(dbPath(), store.Options{Timeout: globals.lockWait})
}

// brokerEnv is an opened store, configuration and service.
type brokerEnv struct {
	Config     *broker.Config
	ConfigPath string
	Store      *store.Store
	Service    *broker.Service
	Log        *slog.Logger
	// Policy is the policy file in force and its reloads; nil when no
	// policy file is named (every request goes to an operator).
	Policy *policy.Watcher
	// builtinPolicy is a policy compiled in rather than read from a file
	// (the demo's), so the Policy page can name it; nil otherwise.
	builtinPolicy *policy.Fixed
	// policyEvents tells the console about reloads of the policy file.
	policyEvents *policyListener
	// runners are background loops the mounted parts need (the revocation
	// feed's push delivery, the policy file's reloads); serveAPI runs them
	// while it serves.
	runners []func(context.Context) error
	// metrics says how the agent API serves /metrics (writ serve
	// --metrics-listen, --metrics-token-file).
	metrics metricsOptions
}

// Close closes the store.
func (e *brokerEnv) Close() error { return e.Store.Close() }

// openBroker loads the configuration, opens the store and builds the
// service with the given options, for the commands that take no requests
// (the policy file is not read).
func openBroker(ctx context.Context, opts broker.Options) (*brokerEnv, error) {
	cfg, path, err := loadConfig()
	if err != nil {
		return nil, err
	}
	return openBrokerWith(ctx, cfg, path, opts, "")
}

// openServingBroker is openBroker for the commands that take requests
// (serve, console): the policy file named by --policy or by the
// configuration evaluates each request and is reloaded when it changes.
// Issuer must be set by the caller.
func openServingBroker(ctx context.Context, opts broker.Options, policyFlag string) (*brokerEnv, error) {
	cfg, path, err := loadConfig()
	if err != nil {
		return nil, err
	}
	return openBrokerWith(ctx, cfg, path, opts, policyFile(policyFlag, cfg))
}

// openBrokerWith opens the store and builds the service over cfg, with the
// policy file at policyPath when it is not "" (else opts.Policy).
func openBrokerWith(ctx context.Context, cfg *broker.Config, path string, opts broker.Options, policyPath string) (*brokerEnv, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Alg == "" {
		opts.Alg = jose.SignatureAlgorithm(globals.signingAlg)
	}
	if !slices.Contains(broker.SupportedAlgs, opts.Alg) { // before a store file is created
		return nil, fmt.Errorf("--signing-alg %q: want ES256, EdDSA or RS256", opts.Alg)
	}
	events := &policyListener{}
	watcher, reload, err := watchPolicy(policyPath, &opts, events, opts.Logger)
	if err != nil {
		return nil, err
	}
	st, err := openStore()
	if err != nil {
		return nil, err
	}
	svc, err := broker.New(ctx, cfg, st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	env := &brokerEnv{Config: cfg, ConfigPath: path, Store: st, Service: svc, Log: opts.Logger,
		Policy: watcher, policyEvents: events}
	if reload != nil {
		env.runners = append(env.runners, reload)
	}
	return env, nil
}
