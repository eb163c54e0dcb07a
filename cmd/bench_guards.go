package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/ssf"
)

// maxBenchGuards is the most guards the revoke-guards phase runs: every
// guard of the load resource is the same receiver (a resource server of
// that many replicas), and writ serve keeps that many streams per receiver
// unless configured otherwise.
const maxBenchGuards = ssf.DefaultMaxStreamsPerReceiver

func init() {
	var spec, cpuprofile string
	c := &cobra.Command{
		Use:    "bench-guards --spec FILE",
		Short:  "A guard process of writ bench's revoke-guards phase (started by writ bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(spec)
			if err != nil {
				return err
			}
			var s load.GuardsSpec
			if err := json.Unmarshal(b, &s); err != nil {
				return fmt.Errorf("%s: %w", spec, err)
			}
			stopProfile, err := startCPUProfile(cpuprofile)
			if err != nil {
				return err
			}
			defer stopProfile()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return load.RunGuards(ctx, s, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&spec, "spec", "", "the guards to run, as JSON (written by writ bench)")
	addCPUProfileFlag(c.Flags(), &cpuprofile)
	rootCmd.AddCommand(c)
}

// guardsPhase starts a writ serve child and --guard-procs guard processes
// sharing --guards guards, and times revoke → refused over --rounds.
func (b *bencher) guardsPhase(ctx context.Context) error {
	// With --profile, writ serve and every guard process write a CPU
	// profile of the phase.
	profile := func(name string) []string {
		if b.f.profile == "" {
			return nil
		}
		path := filepath.Join(b.f.profile, fmt.Sprintf("%s-%s.cpu.pprof", name, time.Now().UTC().Format("20060102T150405Z")))
		fmt.Fprintf(b.progress, "writ bench: CPU profile of %s in %s\n", name, path)
		return []string{"--cpuprofile", path}
	}
	if b.f.profile != "" {
		if err := os.MkdirAll(b.f.profile, 0o700); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}
	child, err := startServeChild(ctx, b.dir, filepath.Join(b.dir, "guards.db"), b.setup, profile("writ-serve-guards")...)
	if err != nil {
		return err
	}
	defer child.stop()
	specPath := filepath.Join(b.dir, "guards-spec.json")
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*load.GuardProcess
	per, extra := b.f.guards/b.f.guardProcs, b.f.guards%b.f.guardProcs
	t0 := time.Now()
	for i := range b.f.guardProcs {
		n := per
		if i < extra {
			n++
		}
		if n == 0 {
			continue
		}
		spec, err := json.Marshal(load.GuardsSpec{Issuer: child.issuer, Resource: b.setup.Resource, Guards: n})
		if err != nil {
			return err
		}
		path := fmt.Sprintf("%s.%d", specPath, i)
		if err := os.WriteFile(path, spec, 0o600); err != nil {
			return err
		}
		c := exec.Command(exe, append([]string{"bench-guards", "--spec", path}, profile(fmt.Sprintf("guard-process-%d", i))...)...)
		c.Env = childEnv()
		stopWithParent(c)
		c.Stderr = os.Stderr
		in, err := c.StdinPipe()
		if err != nil {
			return err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return fmt.Errorf("start a guard process: %w", err)
		}
		defer func() {
			_ = in.Close() // the process ends when its commands do
			_ = c.Wait()
		}()
		p, err := load.NewGuardProcess(in, out)
		if err != nil {
			_ = c.Process.Kill()
			return fmt.Errorf("guard process %d: %w%s", i, err, child.logTail())
		}
		p.PID = c.Process.Pid
		procs = append(procs, p)
	}
	fmt.Fprintf(b.progress, "writ bench: %d guards in %d processes subscribed in %s\n", b.f.guards, len(procs), time.Since(t0).Round(time.Millisecond))
	got, err := load.RevokeToRefused(ctx, b.options("writ", child.issuer, child.pid()), procs, b.f.rounds)
	if err != nil {
		return fmt.Errorf("revoke-guards: %w%s", err, child.logTail())
	}
	b.sum.Guards = newGuardsResult(b.f.guards, len(procs), got)
	return child.stop()
}

func newGuardsResult(guards, procs int, got *load.GuardRounds) *guardsResult {
	ds := got.Times
	r := &guardsResult{Guards: guards, Processes: procs, Rounds: len(ds),
		P50ms: msf(load.Percentile(ds, 0.5)), P90ms: msf(load.Percentile(ds, 0.9)),
		P99ms: msf(load.Percentile(ds, 0.99)), Maxms: msf(load.Percentile(ds, 1)),
		ServerCPUms: -1, GuardCPUms: -1}
	if n := time.Duration(len(ds)); n > 0 && got.ServerCPU >= 0 {
		r.ServerCPUms = msf(got.ServerCPU / n)
	}
	if n := time.Duration(len(ds)); n > 0 && got.GuardCPU >= 0 {
		r.GuardCPUms = msf(got.GuardCPU / n)
	}
	return r
}

// guardsResult is what the revoke-guards phase measured.
type guardsResult struct {
	Guards    int     `json:"guards"`
	Processes int     `json:"processes"`
	Rounds    int     `json:"rounds"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
	// ServerCPUms and GuardCPUms are the CPU the server and all the guard
	// processes used per round, from the /revoke request to the last
	// refusal (read from /proc, in 10 ms ticks); -1 when unknown.
	ServerCPUms float64 `json:"server_cpu_ms_per_round"`
	GuardCPUms  float64 `json:"guard_cpu_ms_per_round"`
}
