package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/tui"
)

// The operator CLI: the console's actions from any shell, for scripts and
// break-glass. Each command signs in with the remembered session (`writ
// login`), acts through the operator API, prints a line for people or
// JSON with --json, and exits with a code scripts can test (see exitCode).

// clipText neutralises agent-supplied text and shortens it to n runes.
func clipText(s string, n int) string {
	s = tui.Neutralise(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return humanDuration(now.Sub(t))
}

// humanDuration reads as a person writes it: 45s, 3m, 3h, 2h5m.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func init() {
	requests := &cobra.Command{Use: "requests", Short: "List and decide pending task requests on a writ server"}
	var lsF remoteFlags
	ls := &cobra.Command{
		Use: "ls", Short: "List the requests waiting for review", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &lsF, func(ctx context.Context, r *remote) error {
				reqs, err := r.Pending(ctx)
				if err != nil {
					return err
				}
				if lsF.json {
					return printJSON(cmd.OutOrStdout(), reqs)
				}
				if len(reqs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no requests waiting")
					return nil
				}
				now := time.Now()
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tAGENT\tSCOPES\tRESOURCE\tWAITING\tAPPROVALS\tINTENT")
				for _, q := range reqs {
					t := q.ProposedTerms()
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", q.ID, clipText(q.AgentID, 24), clipText(strings.Join(t.Scopes, " "), 40),
						clipText(t.Resource, 40), ago(now, q.CreatedAt), len(q.Approvals), q.RequiredApprovals(), clipText(q.Intent, 60))
				}
				return tw.Flush()
			})
		},
	}
	lsF.add(ls.Flags(), false)

	var showF remoteFlags
	show := &cobra.Command{
		Use: "show REQUEST_ID", Short: "Show one request", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd, &showF, func(ctx context.Context, r *remote) error {
				q, err := r.Request(ctx, args[0])
				if err != nil {
					return err
				}
				if showF.json {
					return printJSON(cmd.OutOrStdout(), q)
				}
				w := cmd.OutOrStdout()
				t := q.ProposedTerms()
				fmt.Fprintf(w, "request   %s (%s)\nagent     %s\nintent    %s\nresource  %s\nscopes    %s\nttl       %s\n",
					q.ID, q.State, clipText(q.AgentID, 64), clipText(q.Intent, 1000), clipText(t.Resource, 200),
					clipText(strings.Join(t.Scopes, " "), 400), humanDuration(t.TTL))
				if q.Policy != nil {
					fmt.Fprintf(w, "policy    %s, risk %s\n", q.Policy.Verdict, q.Policy.Risk)
				}
				fmt.Fprintf(w, "approvals %d of %d\n", len(q.Approvals), q.RequiredApprovals())
				if q.DecisionID != "" {
					if d, err := r.Decision(ctx, q.DecisionID); err == nil {
						fmt.Fprintf(w, "decided   %s by %s at %s: %s\n", d.Kind, clipText(d.Operator.Display(), 80),
							d.At.Local().Format(time.DateTime), clipText(d.Reason, 200))
					}
				}
				return nil
			})
		},
	}
	showF.add(show.Flags(), false)

	decide := func(kind broker.DecisionKind) *cobra.Command {
		var f remoteFlags
		var reason, resource string
		var scopes []string
		var ttl, standing time.Duration
		use := string(kind) + " REQUEST_ID"
		short := map[broker.DecisionKind]string{
			broker.DecisionApprove: "Approve a request as asked (or as earlier approvers proposed)",
			broker.DecisionNarrow:  "Approve a request with narrower terms (--scope, --ttl, --resource)",
			broker.DecisionDeny:    "Deny a request, with a reason the agent is told",
		}[kind]
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRemote(cmd, &f, func(ctx context.Context, r *remote) error {
					in := opapi.DecideInput{Reason: reason}
					switch kind {
					case broker.DecisionDeny:
						if strings.TrimSpace(reason) == "" {
							return &ExitError{Code: exitUsage, Err: fmt.Errorf("a denial needs --reason")}
						}
						if err := confirm(cmd, &f, "Deny request "+args[0]+"?"); err != nil {
							return err
						}
					case broker.DecisionNarrow:
						q, err := r.Request(ctx, args[0])
						if err != nil {
							return err
						}
						t := q.ProposedTerms()
						if len(scopes) > 0 {
							t.Scopes = scopes
						}
						if ttl > 0 {
							t.TTL = ttl
						}
						if resource != "" {
							t.Resource = resource
						}
						in.Terms = &t
					}
					res, err := r.Decide(ctx, kind, args[0], in)
					if err != nil {
						return decisionError(err)
					}
					if standing > 0 {
						return standingAfter(ctx, cmd, r, f.json, args[0], res, standing, reason)
					}
					if f.json {
						return printJSON(cmd.OutOrStdout(), res)
					}
					w := cmd.OutOrStdout()
					switch {
					case kind == broker.DecisionDeny:
						fmt.Fprintf(w, "denied %s\n", args[0])
					case res.Grant == nil && res.Request != nil:
						fmt.Fprintf(w, "approval %d of %d recorded for %s; another operator must approve\n",
							len(res.Request.Approvals), res.Request.RequiredApprovals(), args[0])
					case res.Grant != nil:
						fmt.Fprintf(w, "approved %s: grant %s, %s until %s\n", args[0], res.Grant.ID,
							clipText(strings.Join(res.Grant.Terms.Scopes, " "), 80), res.Grant.ExpiresAt.Local().Format(time.DateTime))
					}
					return nil
				})
			},
		}
		f.add(c.Flags(), kind == broker.DecisionDeny)
		c.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log; a denial's reason is told to the agent)")
		if kind == broker.DecisionNarrow {
			c.Flags().StringSliceVar(&scopes, "scope", nil, "the scopes to grant (a subset of those asked; repeatable)")
			c.Flags().DurationVar(&ttl, "ttl", 0, "a shorter lifetime")
			c.Flags().StringVar(&resource, "resource", "", "a narrower resource")
		}
		if kind != broker.DecisionDeny {
			c.Flags().DurationVar(&standing, "standing", 0, "also approve this agent's same or fewer actions on the same resource without a person for this long (e.g. 30m; never for high or critical risk)")
		}
		return c
	}
	requests.AddCommand(ls, show, decide(broker.DecisionApprove), decide(broker.DecisionNarrow), decide(broker.DecisionDeny))
	rootCmd.AddCommand(requests)

	grants := &cobra.Command{Use: "grants", Short: "List and revoke grants on a writ server"}
	var glsF remoteFlags
	var recent time.Duration
	gls := &cobra.Command{
		Use: "ls", Short: "List active grants (and, with --recent, those ended lately)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &glsF, func(ctx context.Context, r *remote) error {
				gs, err := r.Grants(ctx, recent)
				if err != nil {
					return err
				}
				now := time.Now()
				out, err := statusesOf(ctx, r, gs, now)
				if err != nil {
					return err
				}
				if glsF.json {
					return printJSON(cmd.OutOrStdout(), out)
				}
				if len(gs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no grants")
					return nil
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tAGENT\tSTATE\tSCOPES\tEXPIRES IN\tAPPROVER\tENDED BECAUSE")
				for _, gs := range out {
					g, left, why := gs.Grant, "-", ""
					if gs.Status.Live() {
						left = humanDuration(g.ExpiresAt.Sub(now))
					} else {
						why = gs.Status.Cause.Describe()
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, clipText(g.AgentID, 24), gs.Status.State,
						clipText(strings.Join(g.Terms.Scopes, " "), 40), left, clipText(g.Approver.Display(), 30), clipText(why, 50))
				}
				return tw.Flush()
			})
		},
	}
	glsF.add(gls.Flags(), false)
	gls.Flags().DurationVar(&recent, "recent", 0, "also list grants that ended within this long (e.g. 1h)")

	var gshowF remoteFlags
	gshow := &cobra.Command{
		Use: "show GRANT_ID", Short: "Show one grant", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd, &gshowF, func(ctx context.Context, r *remote) error {
				g, err := r.Grant(ctx, args[0])
				if err != nil {
					return err
				}
				all, err := statusesOf(ctx, r, []*broker.Grant{g}, time.Now())
				if err != nil {
					return err
				}
				gs := all[0]
				if gshowF.json {
					return printJSON(cmd.OutOrStdout(), gs)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "grant     %s (%s)\nagent     %s\nintent    %s\nscopes    %s\nresource  %s\nexpires   %s\napprover  %s\n",
					g.ID, gs.Status.State, clipText(g.AgentID, 64), clipText(g.Intent, 1000), clipText(strings.Join(g.Terms.Scopes, " "), 400),
					clipText(g.Terms.Resource, 200), g.ExpiresAt.Local().Format(time.DateTime), clipText(g.Approver.Display(), 80))
				if c := gs.Status.Cause; c != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "ended     %s: %s\n", c.At.Local().Format(time.DateTime), clipText(c.Describe(), 200))
				}
				return nil
			})
		},
	}
	gshowF.add(gshow.Flags(), false)

	var grevF remoteFlags
	var grevReason string
	grev := &cobra.Command{
		Use: "revoke GRANT_ID", Short: "Revoke one grant (and its follow-ons); revoking one already revoked succeeds", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd, &grevF, func(ctx context.Context, r *remote) error {
				if err := confirm(cmd, &grevF, "Revoke grant "+args[0]+"? Its token stops working at once."); err != nil {
					return err
				}
				res, err := r.RevokeGrant(ctx, args[0], grevReason)
				if err != nil {
					return err
				}
				if grevF.json {
					return printJSON(cmd.OutOrStdout(), res)
				}
				if res.Already {
					fmt.Fprintf(cmd.OutOrStdout(), "grant %s was already revoked by %s at %s: %s\n", args[0],
						clipText(res.Revocation.Operator.Display(), 80), res.Revocation.At.Local().Format(time.DateTime), clipText(res.Revocation.Reason, 200))
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked grant %s\n", args[0])
				return nil
			})
		},
	}
	grevF.add(grev.Flags(), true)
	grev.Flags().StringVar(&grevReason, "reason", "revoked from the command line", "why (recorded in the audit log)")
	grants.AddCommand(gls, gshow, grev)
	rootCmd.AddCommand(grants)

}

// decisionError says who decided first when a decision lost a race.
func decisionError(err error) error {
	if d := lostTo(err); d != nil {
		return &ExitError{Code: exitConflict, Err: fmt.Errorf("%w (decided: %s by %s at %s)", err, d.Kind,
			clipText(d.Operator.Display(), 80), d.At.Local().Format(time.DateTime))}
	}
	return freshError(err)
}

// freshError tells the operator how to get the recent sign-in a grave
// action needs.
func freshError(err error) error {
	if needsFresh(err) {
		return &ExitError{Code: exitUnauthorized, Err: fmt.Errorf("%w\nrun `writ login --fresh` and try again", err)}
	}
	return err
}

// statusesOf judges each grant by broker.StatusOf with the server's
// revocation epochs: a grant's record may still say active after an epoch
// (revoke-agent, revoke-all) ended it. It fails when the server cannot
// give the epochs, rather than judge by a state it does not know.
func statusesOf(ctx context.Context, r *remote, gs []*broker.Grant, now time.Time) ([]grantStatus, error) {
	issuer, err := r.Issuer(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the issuer's revocation epochs: %w", err)
	}
	list, err := r.AgentList(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the agents' revocation epochs: %w", err)
	}
	agents := make(map[string]broker.AgentState, len(list))
	for _, a := range list {
		agents[a.ID] = a.State
	}
	out := make([]grantStatus, 0, len(gs))
	for _, g := range gs {
		st := broker.StatusOf(g, issuer.IssuerState, agents[g.AgentID], now)
		out = append(out, grantStatus{Grant: g, State: st.State, Status: st})
	}
	return out, nil
}

// grantStatus is a grant as `writ grants ls|show --json` prints it: the record,
// with its status now (state and typed cause) as broker.StatusOf judges it.
// State shadows the record's own: the record may still say active after an
// epoch ended the grant.
type grantStatus struct {
	*broker.Grant
	State  broker.GrantState  `json:"state"`
	Status broker.GrantStatus `json:"status"`
}
