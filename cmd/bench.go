package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker/load"
)

// benchFlags are the flags of `writ bench`.
type benchFlags struct {
	clients      int
	operators    int
	duration     time.Duration
	phases       string
	scenario     string // the flag of `writ load`, kept as a synonym of --phases
	agents       int
	alg          string
	server       string
	setupDir     string
	serverPID    int
	prepare      string
	grants       int
	auditEntries int
	revokes      int
	starts       int
	guards       int
	guardProcs   int
	rounds       int
	compare      bool
	oidcDir      string
	json         bool
	profile      string
}

// The phases of `writ bench`, in the order they run.
const (
	phaseCycle            = "cycle"
	phaseCycleOperator    = "cycle-operator"
	phaseIntrospect       = "introspect"
	phaseIntrospectAssert = "introspect-assert"
	phaseMemory           = "memory"
	phaseRevokeAll        = "revoke-all"
	phaseStartup          = "startup"
	phaseRevokeGuards     = "revoke-guards"
)

var (
	allPhases     = []string{phaseCycle, phaseCycleOperator, phaseIntrospect, phaseIntrospectAssert, phaseRevokeGuards, phaseMemory, phaseRevokeAll, phaseStartup}
	loadPhases    = []string{phaseCycle, phaseCycleOperator, phaseIntrospect, phaseIntrospectAssert}
	defaultPhases = "cycle,introspect,introspect-assert"
)

func init() {
	var f benchFlags
	cmd := &cobra.Command{
		Use:     "bench",
		Aliases: []string{"load"},
		Short:   "Measure a real `writ serve` from another process over loopback (and oidc-provider beside it)",
		Long: `Start writ serve as a child process on a free loopback port, with a generated
configuration (load agents with fresh keys, one resource with two low-risk
scopes, the resource server's own key), a policy that auto-approves the load
agents' requests for the first scope and leaves the second to an operator,
and a store in a temporary directory; then measure, from this process, the
phases asked for (--phases, comma-separated, or all):

  cycle              --clients agents doing request → approval (the policy's)
                     → DPoP-bound token, every step committed by the server
  cycle-operator     the same with an operator's approval: the agents ask for
                     the scope the policy leaves to operators; --operators
                     operators, signed in to the operator API (/v1/) through
                     the server's development provider (writ serve
                     --dev-oidc), follow its event stream and approve each
                     request with their DPoP-bound operator tokens; told of
                     the approval (as CIBA's ping mode would tell it), the
                     agent polls /token. From submission to token
  introspect         --clients resource-server clients introspecting live
                     tokens with a cached client-credentials token
  introspect-assert  the same with a client assertion per call
  revoke-guards      --guards guards in --guard-procs other processes, each
                     subscribed to the revocation feed; an agent revokes its
                     token (RFC 7009); from that request to the last guard
                     refusing the token, --rounds times
  memory             the server's RSS on a store holding --grants active
                     grants, after start and after a short cycle load
  revoke-all         POST /v1/revoke-all (freezing, as the CLI does; each one
                     then unfrozen, untimed) of an operator signed in to a
                     writ serve --dev-oidc child, --revokes times, on the
                     store holding --grants active grants and on an empty
                     one: the HTTP round trip; and, as the floor, a durable
                     audited revoke-all (no freeze) in this process, no HTTP
  startup            exec → /healthz answering, --starts times, on a store
                     holding --audit-entries audit entries and on an empty one

Each load phase runs for --duration, with its signatures (client assertions,
DPoP proofs) made before it starts so the load process does not compete with
the server for the cores while it is measured. The server's CPU time per
operation and its peak RSS come from /proc/<pid>/stat and /proc/<pid>/status.
A progress bar goes to stderr; the table (or with --json the JSON summary) to
stdout. Every server is stopped at the end and on Ctrl-C; nothing leaves the
loopback interface; the temporary directory is removed.

--compare runs the cycle and introspect-assert phases against panva's
oidc-provider as well (node, .ci/oidc/bench-provider.mjs, started on loopback
with the same client keys) and prints writ/oidc-provider ratios: on a noisy
machine the ratio is the figure that holds.

--server URL measures a writ that is already running instead: prepare its
configuration with --prepare DIR, start it with
  writ serve --config DIR/writ.yaml --policy DIR/policy.yaml
(and --dev-oidc dana for cycle-operator: its operators sign in there)
and run writ bench --server URL --setup DIR [--server-pid PID].

  go run . bench
  writ bench --phases cycle --clients 32 --duration 5s
  writ bench --phases all --json > bench.json
  writ bench --compare --duration 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cmd.Flags().Changed("scenario") && !cmd.Flags().Changed("phases") {
				f.phases = f.scenario
				if f.scenario == "all" { // writ load's all: its two scenarios
					f.phases = "introspect,cycle"
				}
			}
			return runBench(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.clients, "clients", 64, "concurrent clients in each load phase")
	fl.IntVar(&f.operators, "operators", 2, "operators approving through the operator API in the cycle-operator phase")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, fmt.Sprintf("how long each load phase runs (at most %s)", load.MaxDuration))
	fl.StringVar(&f.phases, "phases", defaultPhases, "phases to run, comma-separated: "+strings.Join(allPhases, ", ")+"; or all")
	fl.StringVar(&f.scenario, "scenario", "", "the same as --phases (the flag of writ load)")
	_ = fl.MarkHidden("scenario")
	fl.IntVar(&f.agents, "agents", 0, "load agents in the configuration (default: enough that writ's per-agent rate limit never binds)")
	fl.StringVar(&f.alg, "alg", "ES256", "the agents' key algorithm (client assertions and DPoP proofs): ES256 or EdDSA")
	fl.StringVar(&f.server, "server", "", "measure the writ already serving at this URL (with --setup) instead of starting one")
	fl.StringVar(&f.setupDir, "setup", "", "with --server: the directory --prepare wrote")
	fl.IntVar(&f.serverPID, "server-pid", 0, "with --server: its process id, for its CPU time and memory")
	fl.StringVar(&f.prepare, "prepare", "", "write a configuration, policy and keys into this new directory for --server, and stop")
	fl.IntVar(&f.grants, "grants", 100_000, "active grants for the memory and revoke-all phases")
	fl.IntVar(&f.auditEntries, "audit-entries", 1_000_000, "audit entries for the startup phase")
	fl.IntVar(&f.revokes, "revokes", 50, "revoke-all calls in the revoke-all phase")
	fl.IntVar(&f.starts, "starts", 3, "server starts in the startup phase")
	fl.IntVar(&f.guards, "guards", 200, fmt.Sprintf("guards in the revoke-guards phase (at most %d)", maxBenchGuards))
	fl.IntVar(&f.guardProcs, "guard-procs", 4, "processes the revoke-guards phase spreads its guards over")
	fl.IntVar(&f.rounds, "rounds", 20, "revocations in the revoke-guards phase")
	fl.BoolVar(&f.compare, "compare", false, "run the cycle and introspect-assert phases against oidc-provider too, and print the ratios")
	fl.StringVar(&f.oidcDir, "oidc-dir", ".ci/oidc", "with --compare: the directory of bench-provider.mjs and its package.json")
	fl.BoolVar(&f.json, "json", false, "print the JSON summary instead of the table")
	fl.StringVar(&f.profile, "profile", "", "write a CPU profile of the writ serve of the load phases into this directory (go tool pprof -top FILE)")
	rootCmd.AddCommand(cmd)
}

// presignRate is the full cycles per second signed ahead: twice the budget.
const presignRate = 6000

// parsePhases turns --phases into the phases to run, in their order.
func parsePhases(s string) ([]string, error) {
	if s == "all" {
		return allPhases, nil
	}
	want := map[string]bool{}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("--phases: unknown phase %q (want %s, or all)", p, strings.Join(allPhases, ", "))
		}
		want[p] = true
	}
	var out []string
	for _, p := range allPhases {
		if want[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f benchFlags) check(phases []string) error {
	switch {
	case f.clients < 1 || f.duration <= 0 || f.duration > load.MaxDuration:
		return fmt.Errorf("--clients must be at least 1 and --duration between 0 and %s", load.MaxDuration)
	case f.operators < 1 || f.operators > 64:
		return fmt.Errorf("--operators must be between 1 and 64")
	case f.alg != "ES256" && f.alg != "EdDSA":
		return fmt.Errorf("--alg %q: want ES256 or EdDSA", f.alg)
	case f.grants < 1 || f.grants > 10_000_000 || f.auditEntries < 1 || f.auditEntries > 100_000_000:
		return fmt.Errorf("--grants must be between 1 and 10,000,000 and --audit-entries between 1 and 100,000,000")
	case f.revokes < 1 || f.revokes > 10_000 || f.starts < 1 || f.starts > 100:
		return fmt.Errorf("--revokes must be between 1 and 10,000 and --starts between 1 and 100")
	case f.guards < 1 || f.guards > maxBenchGuards || f.guardProcs < 1 || f.guardProcs > 64 || f.rounds < 1 || f.rounds > 1000:
		return fmt.Errorf("--guards must be between 1 and %d, --guard-procs between 1 and 64 and --rounds between 1 and 1,000", maxBenchGuards)
	case f.server != "" && f.setupDir == "":
		return fmt.Errorf("--server needs --setup DIR: the configuration it runs, written by --prepare")
	case f.server != "" && f.compare:
		return fmt.Errorf("--compare starts both servers itself; leave out --server")
	}
	if f.server != "" {
		for _, p := range phases {
			if !slices.Contains(loadPhases, p) {
				return fmt.Errorf("phase %s runs against a server this bench starts (on a store it prepares, or with guards it subscribes); it cannot run against --server", p)
			}
		}
	}
	return nil
}

func runBench(ctx context.Context, f benchFlags, out, progress io.Writer) error {
	phases, err := parsePhases(f.phases)
	if err != nil {
		return err
	}
	if err := f.check(phases); err != nil {
		return err
	}
	agents := f.agents
	if agents <= 0 {
		agents = load.AgentsFor(presignRate, f.duration)
	}
	if f.prepare != "" {
		return prepareBench(f.prepare, agents, f.alg, out)
	}
	var setup *load.Setup
	if f.server != "" {
		setup, err = load.LoadSetup(f.setupDir)
	} else {
		setup, err = load.NewSetup(agents, jose.SignatureAlgorithm(f.alg))
	}
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "writ-bench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	sum := newBenchSummary(f, phases, len(setup.Agents))
	b := &bencher{f: f, setup: setup, dir: dir, progress: progress, sum: sum}
	var run []string
	for _, p := range phases {
		if slices.Contains(loadPhases, p) {
			run = append(run, p)
		}
	}
	if len(run) > 0 {
		if err := b.loadPhases(ctx, run); err != nil {
			return err
		}
	}
	if slices.Contains(phases, phaseRevokeGuards) {
		if err := b.guardsPhase(ctx); err != nil {
			return err
		}
	}
	if slices.Contains(phases, phaseMemory) || slices.Contains(phases, phaseRevokeAll) {
		if err := b.grantPhases(ctx, slices.Contains(phases, phaseMemory), slices.Contains(phases, phaseRevokeAll)); err != nil {
			return err
		}
	}
	if slices.Contains(phases, phaseStartup) {
		if err := b.startupPhase(ctx); err != nil {
			return err
		}
	}
	sum.finish()
	if f.json {
		return sum.writeJSON(out)
	}
	sum.writeTable(out)
	return nil
}

// prepareBench writes a setup for a server started by hand.
func prepareBench(dir string, agents int, alg string, out io.Writer) error {
	setup, err := load.NewSetup(agents, jose.SignatureAlgorithm(alg))
	if err != nil {
		return err
	}
	if err := setup.Save(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, `wrote %[1]s/%[2]s, %[1]s/%[3]s and %[1]s/%[4]s (%[5]d load agents; the keys file holds private keys)
start the server with
  writ serve --config %[1]s/%[2]s --policy %[1]s/%[3]s --db %[1]s/writ.db
(with --dev-oidc dana as well for the cycle-operator phase) and measure it with
  writ bench --server http://127.0.0.1:8470 --setup %[1]s --server-pid PID
`, dir, load.ConfigFile, load.PolicyFile, load.KeysFile, agents)
	return nil
}

// bencher runs the phases of one `writ bench`.
type bencher struct {
	f        benchFlags
	setup    *load.Setup
	dir      string
	progress io.Writer
	sum      *benchSummary
}

// options are the load options for a target.
func (b *bencher) options(target, issuer string, pid int) load.Options {
	o := load.Options{Issuer: issuer, Setup: b.setup, Clients: b.f.clients, Duration: b.f.duration,
		PresignRate: presignRate, Progress: b.progress, Target: target, ServerPID: pid}
	if target == providerTarget {
		o.Submit = providerSubmit
	}
	return o
}

// loadPhases runs the load phases against writ (a child, or --server),
// then with --compare the comparable ones against oidc-provider.
func (b *bencher) loadPhases(ctx context.Context, phases []string) error {
	issuer, pid := b.f.server, b.f.serverPID
	var child *benchChild
	if issuer == "" {
		var err error
		var extra []string
		if b.f.profile != "" {
			if err := os.MkdirAll(b.f.profile, 0o700); err != nil {
				return fmt.Errorf("--profile: %w", err)
			}
			path := filepath.Join(b.f.profile, fmt.Sprintf("writ-serve-%s.cpu.pprof", time.Now().UTC().Format("20060102T150405Z")))
			extra = []string{"--cpuprofile", path}
			defer fmt.Fprintf(b.progress, "writ bench: CPU profile of writ serve in %s (go tool pprof -top %s)\n", path, path)
		}
		if slices.Contains(phases, phaseCycleOperator) {
			extra = append(extra, devOIDCArgs...)
		}
		if child, err = startServeChild(ctx, b.dir, b.dir+"/writ.db", b.setup, extra...); err != nil {
			return err
		}
		defer child.stop()
		issuer, pid = child.issuer, child.pid()
		fmt.Fprintf(b.progress, "writ bench: writ serve (pid %d) at %s ready in %s; %d agents, %d clients, %s per phase\n",
			pid, issuer, child.ready.Round(time.Millisecond), len(b.setup.Agents), b.f.clients, b.f.duration)
	}
	tail := func() string {
		if child == nil {
			return ""
		}
		return child.logTail()
	}
	for _, p := range phases {
		var r load.Result
		var err error
		if p == phaseCycleOperator {
			r, err = b.cycleOperatorPhase(ctx, issuer, pid)
			if err == nil {
				err = ctx.Err()
			}
		} else {
			r, err = runLoadPhase(ctx, p, b.options("writ", issuer, pid))
		}
		if err != nil {
			return fmt.Errorf("writ %s: %w%s", p, err, tail())
		}
		b.sum.addLoad(r)
	}
	if child != nil {
		if err := child.stop(); err != nil {
			fmt.Fprintf(b.progress, "writ bench: writ serve did not stop cleanly: %v%s\n", err, child.logTail())
		}
	}
	if !b.f.compare {
		return nil
	}
	prov, err := startProvider(ctx, b.dir, b.f.oidcDir, b.setup)
	if err != nil {
		return err
	}
	defer prov.stop()
	fmt.Fprintf(b.progress, "writ bench: oidc-provider (pid %d) at %s ready in %s\n", prov.pid(), prov.issuer, prov.ready.Round(time.Millisecond))
	for _, p := range phases {
		if p == phaseIntrospect || p == phaseCycleOperator {
			// oidc-provider authenticates every introspection caller as a
			// client, and has no operator API
			continue
		}
		r, err := runLoadPhase(ctx, p, b.options(providerTarget, prov.issuer, prov.pid()))
		if err != nil {
			return fmt.Errorf("oidc-provider %s: %w%s", p, err, prov.logTail())
		}
		b.sum.addLoad(r)
	}
	return nil
}

func runLoadPhase(ctx context.Context, phase string, o load.Options) (load.Result, error) {
	run := map[string]func(context.Context, load.Options) (load.Result, error){
		phaseCycle: load.Cycle, phaseIntrospect: load.Introspect, phaseIntrospectAssert: load.IntrospectAssert,
	}[phase]
	r, err := run(ctx, o)
	if err == nil {
		err = ctx.Err()
	}
	return r, err
}
