package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/policy"
	"github.com/writhq/writ/store"
	"github.com/writhq/writ/tui"
)

// errFindings makes `writ policy check` exit non-zero when it reported
// findings, after printing them.
var errFindings = errors.New("policy check found problems")

func init() {
	pol := &cobra.Command{Use: "policy", Short: "Check, test and replay a policy file before it is in force"}
	pol.AddCommand(policyCheckCmd(), policyTestCmd(), policyReplayCmd())
	rootCmd.AddCommand(pol)
}

func policyCheckCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "check FILE",
		Short: "Type-check a policy file and report rules that can never do what they say",
		Long: `check compiles every rule as writ would when it loads the file, then looks for rules
that load but can never matter: a when that is always false, rules after a deny that
matches every request, an auto_approve that can never apply, and a deny whose
conditions include all of an earlier deny's. It exits non-zero on an error or a finding.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			findings := p.Lint()
			out := cmd.OutOrStdout()
			if asJSON {
				if findings == nil {
					findings = []policy.Finding{}
				}
				if err := writeJSON(out, map[string]any{"file": p.Name(), "rules": p.Len(), "findings": findings}); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(out, f)
				}
				if len(findings) == 0 {
					fmt.Fprintf(out, "%s: %d rules, type-checked, no findings\n", p.Name(), p.Len())
				}
			}
			if len(findings) > 0 {
				return fmt.Errorf("%w: %d in %s", errFindings, len(findings), p.Name())
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the findings as JSON")
	return c
}

func policyTestCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "test FILE REQUEST.json",
		Short: "Show the trace of a policy for one sample request (no store needed)",
		Long: `test evaluates the policy for one request written as JSON and prints the trace the
console would show. The configuration, when there is one, supplies the catalogue's risk
and the agent's name and owner. Example REQUEST.json:

  {"agent": {"id": "docs-bot"}, "scopes": ["contents:read"],
   "resource": "https://git.acme.example", "ttl": "15m",
   "history": {"hour": {"denials": 2}, "active_grants": 1}}

Optional fields: intent, login_hint, authorization_details, parent {scopes, resource,
ttl} (a follow-on), now (RFC 3339), history {hour, day: {requests, denials, refusals,
revocations}, active_grants}.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			data, err := readLimited(args[1], policy.MaxSampleSize)
			if err != nil {
				return err
			}
			sample, err := policy.ParseSample(args[1], data)
			if err != nil {
				return err
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			in := sample.Input(cfg, time.Now().UTC())
			res, fx := p.EvaluateEffects(cmd.Context(), in)
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, map[string]any{"result": res, "effects": fx})
			}
			if in.Resource == nil {
				fmt.Fprintf(out, "note: %q is not in the configuration's catalogue; risk comes from labels alone\n", sample.Resource)
			}
			for _, l := range res.Trace {
				fmt.Fprintln(out, tui.Neutralise(l))
			}
			for _, e := range fx.OnDeny {
				fmt.Fprintf(out, "on_deny: %s (rule %s)\n", e.Action, e.Rule)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the result and effects as JSON")
	return c
}

func policyReplayCmd() *cobra.Command {
	var asJSON bool
	var since string
	c := &cobra.Command{
		Use:   "replay FILE",
		Short: "Report which past outcomes a candidate policy would change",
		Long: `replay evaluates FILE against every request in the audit log since --since, each with
the agent's history as it was then, and reports the outcomes that would change
(auto-approved that would need a person, approved by a person that would be refused,
...), with counts, the rules responsible and the requests (by id prefix). It only
reads the store (--db). A running writ holds its store: replay a copy of it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			st, err := store.OpenReadOnly(dbPath(), store.Options{Timeout: globals.lockWait})
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w: replay a copy of the store with --db COPY", err)
			}
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := policy.Replay(cmd.Context(), p, cfg, auditSince(st, from.Add(-broker.HistoryDay)), from)
			if err != nil {
				return err
			}
			if asJSON {
				if rep.Flips == nil {
					rep.Flips = []policy.Flip{}
				}
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			writeReplay(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the report as JSON")
	c.Flags().StringVar(&since, "since", "7d", "how far back: a duration (7d, 36h) or an RFC 3339 time")
	return c
}

// writeReplay writes a replay report for a person.
func writeReplay(w io.Writer, rep *policy.ReplayReport) {
	fmt.Fprintf(w, "replay of %s over %d requests since %s\n", rep.Policy, rep.Evaluated, rep.Since.UTC().Format(time.RFC3339))
	if len(rep.Flips) == 0 {
		fmt.Fprintln(w, "no outcome would change")
	}
	for _, f := range rep.Flips {
		fmt.Fprintf(w, "\n%4d  %s → would be %s\n", f.Count, f.From, f.To)
		if len(f.Rules) > 0 {
			fmt.Fprintf(w, "      rules: %s\n", strings.Join(f.Rules, ", "))
		}
		const most = 20
		ids := f.Requests
		more := ""
		if len(ids) > most {
			ids, more = ids[:most], fmt.Sprintf(" and %d more (--json lists all)", len(ids)-most)
		}
		fmt.Fprintf(w, "      requests: %s%s\n", strings.Join(ids, " "), more)
	}
	fmt.Fprintf(w, "\nunchanged: %d", rep.Unchanged)
	if rep.ShadowHits > 0 {
		fmt.Fprintf(w, " · shadow rule hits: %d", rep.ShadowHits)
	}
	if rep.Unevaluable > 0 {
		fmt.Fprintf(w, " · entries that could not be read: %d", rep.Unevaluable)
	}
	fmt.Fprintln(w)
}

// parseSince reads --since: a number of days (7d), a Go duration (36h) or
// an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 3650 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: write a number of days (7d), a duration (36h) or an RFC 3339 time", s)
}

// readLimited reads a local file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errFound stops an audit scan that has found what it looked for.
var errFound = errors.New("found")

// auditSince visits the audit entries from the first one at or after t,
// oldest first. A replay starts a day before its window, so the history
// its first requests see (hour and day counts) is complete without
// reading the whole log.
func auditSince(st *store.Store, t time.Time) policy.AuditSource {
	return func(fn func(*broker.AuditEntry) error) error {
		return st.View(context.Background(), func(tx broker.TxReader) error {
			from := uint64(0)
			err := tx.ForEachAuditReverse(0, func(e *broker.AuditEntry) error {
				if e.At.Before(t) {
					return errFound
				}
				from = e.Seq
				return nil
			})
			if err != nil && !errors.Is(err, errFound) {
				return err
			}
			if from == 0 {
				return nil // nothing at or after t
			}
			return tx.ForEachAudit(from, fn)
		})
	}
}

// ReplayWindow is how far back the console replays a reloaded policy.
const ReplayWindow = 24 * time.Hour

// sendPolicyReplay replays a freshly loaded policy over the last day of
// the store's audit log and sends the console the summary for its policy
// banner. It runs on its own goroutine, stopped by ctx.
func sendPolicyReplay(ctx context.Context, send func(tea.Msg), env *brokerEnv, p *policy.Policy) {
	now := env.Service.Now()
	rep, err := policy.Replay(ctx, p, env.Config, auditSince(env.Store, now.Add(-ReplayWindow-broker.HistoryDay)), now.Add(-ReplayWindow))
	if ctx.Err() != nil {
		return
	}
	msg := tui.PolicyReplayMsg{File: p.Name(), At: now, Err: err}
	if err == nil {
		msg.Summary = rep.Summary()
	}
	send(msg)
}
