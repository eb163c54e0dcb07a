package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/store"
)

// benchSummary is everything one `writ bench` measured, as --json prints it.
type benchSummary struct {
	Command  string           `json:"command"`
	Date     time.Time        `json:"date"`
	Machine  benchMachine     `json:"machine"`
	Settings benchSettings    `json:"settings"`
	Load     []loadResult     `json:"load,omitempty"`
	Ratios   []benchRatio     `json:"ratios,omitempty"`
	Seeded   seeded           `json:"seeded"`
	Memory   *memoryResult    `json:"memory,omitempty"`
	Revoke   *revokeAllResult `json:"revoke_all,omitempty"`
	Startup  *startupResult   `json:"startup,omitempty"`
	Guards   *guardsResult    `json:"revoke_guards,omitempty"`
}

type benchMachine struct {
	CPUs        int    `json:"cpus"`
	MemoryBytes int64  `json:"memory_bytes"`
	Go          string `json:"go"`
	OS          string `json:"os"`
}

type benchSettings struct {
	Phases          []string `json:"phases"`
	Clients         int      `json:"clients"`
	DurationSeconds float64  `json:"duration_seconds"`
	Agents          int      `json:"agents"`
	Alg             string   `json:"alg"`
	Server          string   `json:"server,omitempty"`
}

// loadResult is one load phase against one target.
type loadResult struct {
	Target    string  `json:"target"`
	Phase     string  `json:"phase"`
	Clients   int     `json:"clients"`
	Count     int     `json:"count"`
	Errors    int     `json:"errors"`
	Throttled int     `json:"throttled,omitempty"`
	Exhausted bool    `json:"exhausted,omitempty"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50ms     float64 `json:"p50_ms"`
	P90ms     float64 `json:"p90_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
	// Server CPU and memory; absent when the server's process is unknown.
	ServerCPUms      float64 `json:"server_cpu_ms,omitempty"`
	ServerCPUusPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
	ServerRSS        int64   `json:"server_rss_bytes,omitempty"`
	ServerAnonRSS    int64   `json:"server_anon_rss_bytes,omitempty"`
	ServerPeakRSS    int64   `json:"server_peak_rss_bytes,omitempty"`
	// ServerWriteBytesPerOp is what the server wrote to storage per
	// operation (/proc/<pid>/io write_bytes).
	ServerWriteBytesPerOp float64 `json:"server_write_bytes_per_op,omitempty"`
	FirstError            string  `json:"first_error,omitempty"`
	// ClientCPUms is the load generator's own CPU time in the phase.
	ClientCPUms float64 `json:"client_cpu_ms,omitempty"`
}

// benchRatio compares writ with oidc-provider on one phase; above 1 is
// writ ahead on every figure.
type benchRatio struct {
	Phase string `json:"phase"`
	// Throughput is writ's per second over oidc-provider's.
	Throughput float64 `json:"throughput"`
	// P99 is oidc-provider's p99 over writ's.
	P99 float64 `json:"p99"`
	// CPUPerOp is oidc-provider's server CPU per operation over writ's.
	CPUPerOp float64 `json:"cpu_per_op,omitempty"`
}

type seeded struct {
	Grants        int     `json:"grants,omitempty"`
	GrantsSeconds float64 `json:"grants_seconds,omitempty"`
	AuditEntries  int     `json:"audit_entries,omitempty"`
	AuditSeconds  float64 `json:"audit_seconds,omitempty"`
}

type memoryResult struct {
	Grants         int     `json:"grants"`
	ReadySeconds   float64 `json:"ready_seconds"`
	RSSAfterStart  int64   `json:"rss_after_start_bytes"`
	AnonAfterStart int64   `json:"anon_rss_after_start_bytes"`
	// FileAfterStart and FileAfterLoad are the file-backed part of RSS
	// (RssFile): the executable and the pages of the store mapped in.
	FileAfterStart int64 `json:"file_rss_after_start_bytes"`
	Cycles         int   `json:"cycles"`
	CycleErrors    int   `json:"cycle_errors"`
	RSSAfterLoad   int64 `json:"rss_after_load_bytes"`
	AnonAfterLoad  int64 `json:"anon_rss_after_load_bytes"`
	FileAfterLoad  int64 `json:"file_rss_after_load_bytes"`
	PeakRSS        int64 `json:"peak_rss_bytes"`
	// StoreBytes is the size of the store file the RSS maps in part.
	StoreBytes int64 `json:"store_bytes"`
	// Store is where that file goes, read after the load.
	Store *store.Usage `json:"store,omitempty"`
}

// revokeAllResult is revoke-all through the operator API of a writ serve
// child (HTTP*: the round trip of POST /v1/revoke-all) and, as the floor
// it is read against, in the bench's own process on a copy of the same
// store (the durable commit alone).
type revokeAllResult struct {
	HTTPWithGrants revokeAllTimes `json:"http_with_grants"`
	HTTPEmpty      revokeAllTimes `json:"http_empty"`
	WithGrants     revokeAllTimes `json:"with_grants"`
	Empty          revokeAllTimes `json:"empty"`
}

type revokeAllTimes struct {
	Grants int     `json:"grants"`
	Calls  int     `json:"calls"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Maxms  float64 `json:"max_ms"`

	p50, p99 time.Duration
}

func newRevokeAllTimes(grants int, ds []time.Duration) revokeAllTimes {
	t := revokeAllTimes{Grants: grants, Calls: len(ds), p50: load.Percentile(ds, 0.5), p99: load.Percentile(ds, 0.99)}
	t.P50ms, t.P99ms, t.Maxms = msf(t.p50), msf(t.p99), msf(load.Percentile(ds, 1))
	return t
}

type startupResult struct {
	WithAudit startupTimes `json:"with_audit"`
	Empty     startupTimes `json:"empty"`
}

type startupTimes struct {
	AuditEntries int       `json:"audit_entries"`
	Starts       []float64 `json:"starts_ms"`
	Medianms     float64   `json:"median_ms"`
	Maxms        float64   `json:"max_ms"`
	RSS          int64     `json:"rss_after_start_bytes"`
	AnonRSS      int64     `json:"anon_rss_after_start_bytes"`

	median, max time.Duration
}

func newStartupTimes(entries int, ds []time.Duration, rss, anon int64) startupTimes {
	t := startupTimes{AuditEntries: entries, RSS: rss, AnonRSS: anon}
	for _, d := range ds {
		t.Starts = append(t.Starts, msf(d))
	}
	t.median, t.max = load.Percentile(ds, 0.5), load.Percentile(ds, 1)
	t.Medianms, t.Maxms = msf(t.median), msf(t.max)
	return t
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", msf(d)) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func newBenchSummary(f benchFlags, phases []string, agents int) *benchSummary {
	return &benchSummary{
		Command: "writ " + strings.Join(os.Args[1:], " "),
		Date:    time.Now().UTC().Truncate(time.Second),
		Machine: benchMachine{CPUs: runtime.NumCPU(), MemoryBytes: memTotal(), Go: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH},
		Settings: benchSettings{Phases: phases, Clients: f.clients, DurationSeconds: f.duration.Seconds(),
			Agents: agents, Alg: f.alg, Server: f.server},
	}
}

// memTotal is the machine's memory from /proc/meminfo; 0 when unknown.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func (s *benchSummary) addLoad(r load.Result) {
	lr := loadResult{Target: r.Target, Phase: r.Scenario, Clients: r.Clients, Count: r.Count, Errors: r.Errors,
		Throttled: r.Throttled, Exhausted: r.Exhausted, Seconds: r.Elapsed.Seconds(), PerSecond: r.Rate(),
		P50ms: msf(r.P50), P90ms: msf(r.P90), P99ms: msf(r.P99), Maxms: msf(r.Max)}
	if r.Server != nil {
		lr.ServerCPUms = msf(r.Server.CPU)
		lr.ServerCPUusPerOp = float64(r.CPUPerOp().Nanoseconds()) / 1000
		lr.ServerRSS, lr.ServerAnonRSS, lr.ServerPeakRSS = r.Server.RSS, r.Server.AnonRSS, r.Server.PeakRSS
		if r.Server.WriteBytes >= 0 && r.Count > 0 {
			lr.ServerWriteBytesPerOp = float64(r.Server.WriteBytes) / float64(r.Count)
		}
	}
	if r.FirstError != nil {
		lr.FirstError = r.FirstError.Error()
	}
	lr.ClientCPUms = msf(r.ClientCPU)
	s.Load = append(s.Load, lr)
}

// finish computes the ratios of the phases run against both targets.
func (s *benchSummary) finish() {
	for _, w := range s.Load {
		if w.Target != "writ" {
			continue
		}
		i := slices.IndexFunc(s.Load, func(p loadResult) bool { return p.Target == providerTarget && p.Phase == w.Phase })
		if i < 0 || s.Load[i].PerSecond == 0 || w.P99ms == 0 {
			continue
		}
		p := s.Load[i]
		r := benchRatio{Phase: w.Phase, Throughput: w.PerSecond / p.PerSecond, P99: p.P99ms / w.P99ms}
		if w.ServerCPUusPerOp > 0 && p.ServerCPUusPerOp > 0 {
			r.CPUPerOp = p.ServerCPUusPerOp / w.ServerCPUusPerOp
		}
		s.Ratios = append(s.Ratios, r)
	}
}

func (s *benchSummary) writeJSON(out io.Writer) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// writeTable prints the results for people.
func (s *benchSummary) writeTable(out io.Writer) {
	fmt.Fprintf(out, "writ bench · %s · %d CPUs, %s · %s · %s\n", s.Date.Format(time.RFC3339), s.Machine.CPUs,
		mib(s.Machine.MemoryBytes), s.Machine.Go, s.Command)
	if len(s.Load) > 0 {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tphase\tclients\tdone\tper second\tp50\tp90\tp99\tmax\terrors\tserver CPU/op\twritten/op\tpeak RSS\tanon RSS\t")
		for _, r := range s.Load {
			cpu, written, rss, anon := "?", "?", "?", "?"
			if r.ServerPeakRSS > 0 {
				cpu, rss, anon = fmt.Sprintf("%.0f µs", r.ServerCPUusPerOp), mib(r.ServerPeakRSS), mib(r.ServerAnonRSS)
				written = fmt.Sprintf("%.1f KiB", r.ServerWriteBytesPerOp/1024)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.2f ms\t%.2f ms\t%.2f ms\t%.2f ms\t%d\t%s\t%s\t%s\t%s\t\n", r.Target, r.Phase,
				r.Clients, r.Count, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.Maxms, r.Errors, cpu, written, rss, anon)
		}
		_ = tw.Flush()
	}
	for _, r := range s.Load {
		if r.Exhausted {
			fmt.Fprintf(out, "%s %s: every presigned operation was used before the end; the rate is a lower bound (raise --agents)\n", r.Target, r.Phase)
		}
		if r.Throttled > 0 {
			fmt.Fprintf(out, "%s %s: %d refused with slow_down (a rate limit or a replay quota: the first error says which)\n", r.Target, r.Phase, r.Throttled)
		}
		if r.FirstError != "" {
			fmt.Fprintf(out, "%s %s: first error: %s\n", r.Target, r.Phase, r.FirstError)
		}
	}
	for _, r := range s.Ratios {
		cpu := ""
		if r.CPUPerOp > 0 {
			cpu = fmt.Sprintf(", server CPU per operation ×%.2f less", r.CPUPerOp)
		}
		fmt.Fprintf(out, "writ / oidc-provider, %s: throughput ×%.2f, p99 ×%.2f lower%s\n", r.Phase, r.Throughput, r.P99, cpu)
	}
	if m := s.Memory; m != nil {
		fmt.Fprintf(out, "memory: %d active grants (store %s): RSS %s (anonymous %s, file %s) after start, ready in %.0f ms; %s (anonymous %s, file %s) after %d cycles; peak %s\n",
			m.Grants, mib(m.StoreBytes), mib(m.RSSAfterStart), mib(m.AnonAfterStart), mib(m.FileAfterStart), m.ReadySeconds*1000,
			mib(m.RSSAfterLoad), mib(m.AnonAfterLoad), mib(m.FileAfterLoad), m.Cycles, mib(m.PeakRSS))
		if u := m.Store; u != nil {
			// The seeded grants and those the load made: every grant comes
			// with its request, decision and audit entries.
			grants := 0
			for _, b := range u.Buckets {
				if b.Name == "grants" {
					grants = b.Keys
				}
			}
			fmt.Fprintf(out, "store after the load: %s, %d pages in no bucket (free, freelist, meta); %d grants, per grant:",
				mib(u.FileBytes), u.OtherPages, grants)
			for _, b := range u.Buckets {
				if b.Pages > 0 && grants > 0 {
					fill := 100 * float64(b.Inuse) / float64(b.Alloc)
					fmt.Fprintf(out, " %s %.0f B (%.0f%% full)", b.Name, float64(b.Alloc)/float64(grants), fill)
				}
			}
			fmt.Fprintln(out)
		}
	}
	if r := s.Revoke; r != nil {
		for _, t := range []revokeAllTimes{r.HTTPWithGrants, r.HTTPEmpty} {
			fmt.Fprintf(out, "revoke-all (POST /v1/revoke-all round trip, durable): %d active grants: ×%d p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
				t.Grants, t.Calls, t.P50ms, t.P99ms, t.Maxms)
		}
		for _, t := range []revokeAllTimes{r.WithGrants, r.Empty} {
			fmt.Fprintf(out, "revoke-all (durable, in the bench's process, no HTTP: the floor): %d active grants: ×%d p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
				t.Grants, t.Calls, t.P50ms, t.P99ms, t.Maxms)
		}
	}
	if g := s.Guards; g != nil {
		fmt.Fprintf(out, "revoke → refused: %d guards in %d processes: ×%d p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (from the agent's /revoke request to the last refusal); CPU per round: server %.0f ms, guard processes %.0f ms\n",
			g.Guards, g.Processes, g.Rounds, g.P50ms, g.P90ms, g.P99ms, g.Maxms, g.ServerCPUms, g.GuardCPUms)
	}
	if st := s.Startup; st != nil {
		for _, t := range []startupTimes{st.WithAudit, st.Empty} {
			fmt.Fprintf(out, "start-up (exec → /healthz): %d audit entries: median %.0f ms, max %.0f ms over %d starts, RSS %s (anonymous %s)\n",
				t.AuditEntries, t.Medianms, t.Maxms, len(t.Starts), mib(t.RSS), mib(t.AnonRSS))
		}
	}
}
