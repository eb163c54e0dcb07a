package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker/load"
)

// loadFlags are the flags of `writ load`.
type loadFlags struct {
	clients  int
	duration time.Duration
	scenario string
	agents   int
}

func init() {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Measure a real `writ serve` under load, from another process over loopback",
		Long: `Start writ serve as a child process on a free loopback port, with a generated
configuration (load agents with fresh keys, one resource with a low-risk scope,
the resource server's own key), a policy that auto-approves the load agents'
low-risk requests, and a store in a temporary directory; then measure:

  introspect  --clients resource-server clients introspecting live tokens,
              authenticated by a cached client-credentials token
  cycle       --clients agents doing request → approval (the policy's) →
              DPoP-bound token, every step committed by the server

Each scenario runs for --duration; a line of progress a second goes to stderr,
the table of results to stdout. The server is stopped at the end, and on
Ctrl-C. Nothing leaves the loopback interface; the directory is removed.

  go run . load
  writ load --scenario cycle --clients 32 --duration 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runLoad(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.clients, "clients", 64, "concurrent clients in each scenario")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, fmt.Sprintf("how long each scenario runs (at most %s)", load.MaxDuration))
	fl.StringVar(&f.scenario, "scenario", "all", "introspect, cycle or all")
	fl.IntVar(&f.agents, "agents", 0, "load agents in the configuration (default: enough that writ's per-agent rate limit never binds)")
	rootCmd.AddCommand(cmd)
}

// presignRate is the full cycles per second signed ahead: twice the budget.
const presignRate = 6000

func runLoad(ctx context.Context, f loadFlags, out, progress io.Writer) error {
	var scenarios []string
	switch f.scenario {
	case "all":
		scenarios = []string{"introspect", "cycle"}
	case "introspect", "cycle":
		scenarios = []string{f.scenario}
	default:
		return fmt.Errorf("--scenario %q: want introspect, cycle or all", f.scenario)
	}
	if f.clients < 1 || f.duration <= 0 || f.duration > load.MaxDuration {
		return fmt.Errorf("--clients must be at least 1 and --duration between 0 and %s", load.MaxDuration)
	}
	agents := f.agents
	if agents <= 0 {
		agents = load.AgentsFor(presignRate, f.duration)
	}
	setup, err := load.NewSetup(agents)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "writ-load-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	srv, err := startLoadServer(ctx, dir, setup)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(progress, "writ load: writ serve (pid %d) at %s, %d agents, %d clients, %s per scenario\n",
		srv.cmd.Process.Pid, srv.issuer, agents, f.clients, f.duration)
	o := load.Options{Issuer: srv.issuer, Setup: setup, Clients: f.clients, Duration: f.duration,
		PresignRate: presignRate, Progress: progress}
	var results []load.Result
	for _, s := range scenarios {
		run := load.Introspect
		if s == "cycle" {
			run = load.Cycle
		}
		r, err := run(ctx, o)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: %w%s", s, err, srv.logTail())
		}
		results = append(results, r)
	}
	if err := srv.stop(); err != nil {
		fmt.Fprintf(progress, "writ load: the server did not stop cleanly: %v%s\n", err, srv.logTail())
	}
	printLoadResults(out, results)
	return nil
}

// printLoadResults writes the table of results, with what went wrong.
func printLoadResults(out io.Writer, results []load.Result) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tclients\tdone\tper second\tp50\tp95\tp99\tmax\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", r.Scenario, r.Clients, r.Count, r.Rate(),
			ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max), r.Errors)
	}
	_ = tw.Flush()
	for _, r := range results {
		if r.Exhausted {
			fmt.Fprintf(out, "%s: every presigned cycle was used after %s; the rate is a lower bound (raise --agents)\n",
				r.Scenario, r.Elapsed.Round(time.Millisecond))
		}
		if r.Throttled > 0 {
			fmt.Fprintf(out, "%s: %d refused by writ's per-agent rate limit (raise --agents)\n", r.Scenario, r.Throttled)
		}
		if r.FirstError != nil {
			fmt.Fprintf(out, "%s: first error: %v\n", r.Scenario, r.FirstError)
		}
	}
}

// loadServer is `writ serve` running as a child process for a load run.
type loadServer struct {
	cmd     *exec.Cmd
	issuer  string
	logPath string
	exited  chan struct{} // closed when the child has been waited for
	waitErr error
	stopped bool
}

// startLoadServer writes the configuration and the policy into dir and
// starts this executable's `serve` on a free loopback port, returning
// once it answers /healthz.
func startLoadServer(ctx context.Context, dir string, setup *load.Setup) (*loadServer, error) {
	cfg, err := setup.ConfigYAML()
	if err != nil {
		return nil, err
	}
	cfgPath, policyPath := filepath.Join(dir, "writ.yaml"), filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", cfgPath, err)
	}
	if err := os.WriteFile(policyPath, load.PolicyYAML(), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", policyPath, err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find writ's executable: %w", err)
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", logPath, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	c := exec.Command(exe, "serve", "--config", cfgPath, "--policy", policyPath,
		"--db", filepath.Join(dir, "writ.db"), "--listen", addr)
	c.Env = childEnv()
	stopWithParent(c)
	c.Stdout, c.Stderr = logFile, logFile
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	s := &loadServer{cmd: c, issuer: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = c.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx); err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("%w%s", err, s.logTail())
	}
	return s, nil
}

// childEnv is this process's environment without WRIT_* variables, which
// would override the flags the child is given nothing for.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WRIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeLoopbackAddr picks a port the kernel says is free on 127.0.0.1.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// waitHealthy polls /healthz until it answers 200, for up to 30 s (a
// configuration of thousands of agents takes a moment to load).
func (s *loadServer) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.issuer+"/healthz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("writ serve exited before it was healthy: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("writ serve was not healthy after 30 s")
		}
	}
}

// stop asks the child to shut down (SIGINT, as Ctrl-C would), kills it
// if it has not within 15 s, and waits for it. It may be called again.
func (s *loadServer) stop() error {
	if s.stopped {
		<-s.exited
		return nil
	}
	s.stopped = true
	select {
	case <-s.exited:
		return s.waitErr
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("writ serve did not stop within 15 s of SIGINT; killed")
	}
}

// logTail is the end of the child's log, to say why something failed.
func (s *loadServer) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nwrit serve's log ends:\n" + string(bytes.TrimRight(b, "\n"))
}
