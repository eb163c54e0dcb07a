package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
)

// approvedWithStanding is what `writ requests approve --standing --json`
// prints: the decision and the standing approval made from it.
type approvedWithStanding struct {
	*opapi.DecisionResult
	Standing *broker.StandingApproval `json:"standing,omitempty"`
}

// standingAfter makes a standing approval from a decision just taken.
// The decision stands whatever becomes of the standing approval; a
// refusal is an error exit that says so.
func standingAfter(ctx context.Context, cmd *cobra.Command, r *remote, asJSON bool, id string, res *opapi.DecisionResult,
	d time.Duration, reason string) error {
	w := cmd.OutOrStdout()
	if res.Grant == nil {
		if asJSON {
			_ = printJSON(w, approvedWithStanding{DecisionResult: res})
		}
		return &ExitError{Code: exitConflict, Err: fmt.Errorf("approval of %s recorded; it needs another operator, so no standing approval was made", id)}
	}
	if reason == "" {
		reason = "recurring task, approved from the command line"
	}
	sa, err := r.CreateStanding(ctx, r.Operator(), id, d, reason)
	if asJSON {
		if perr := printJSON(w, approvedWithStanding{DecisionResult: res, Standing: sa}); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(w, "approved %s: grant %s, %s until %s\n", id, res.Grant.ID,
			clipText(strings.Join(res.Grant.Terms.Scopes, " "), 80), res.Grant.ExpiresAt.Local().Format(time.DateTime))
	}
	if err != nil {
		return fmt.Errorf("approved, but no standing approval: %w", err)
	}
	if !asJSON {
		fmt.Fprintf(w, "standing approval %s: %s's requests for %s on %s are approved without a person until %s\n",
			sa.ID, clipText(sa.AgentID, 64), clipText(strings.Join(sa.Terms.Actions(), " "), 200), clipText(sa.Terms.Resource, 200),
			sa.ExpiresAt.Local().Format(time.DateTime))
	}
	return nil
}

func init() {
	standing := &cobra.Command{Use: "standing", Short: "List and revoke standing approvals on a writ server"}
	var lsF remoteFlags
	ls := &cobra.Command{
		Use: "ls", Short: "List standing approvals with their uses (live ones first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &lsF, func(ctx context.Context, r *remote) error {
				st, err := r.Standing(ctx)
				if err != nil {
					return err
				}
				if lsF.json {
					return printJSON(cmd.OutOrStdout(), st)
				}
				if len(st.Standing) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no standing approvals")
					return nil
				}
				now := time.Now()
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tSTATE\tAGENT\tACTIONS\tRESOURCE\tLEFT\tUSES\tBY\tREASON")
				for _, s := range st.Standing {
					left := "-"
					if s.State(now) == broker.StandingActive {
						left = humanDuration(s.ExpiresAt.Sub(now))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.State(now), clipText(s.AgentID, 24),
						clipText(strings.Join(s.Terms.Actions(), " "), 40), clipText(s.Terms.Resource, 40), left, len(s.Uses),
						clipText(s.CreatedBy.Display(), 30), clipText(s.Reason, 50))
				}
				return tw.Flush()
			})
		},
	}
	lsF.add(ls.Flags(), false)

	var revF remoteFlags
	var reason string
	rev := &cobra.Command{
		Use: "revoke STANDING_ID", Short: "Revoke a standing approval: its agent's requests wait for a person again", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd, &revF, func(ctx context.Context, r *remote) error {
				if err := confirm(cmd, &revF, "Revoke standing approval "+args[0]+"? Its agent's requests then wait for a person; the grants it made continue until revoked."); err != nil {
					return err
				}
				sa, err := r.RevokeStanding(ctx, r.Operator(), args[0], reason)
				if err != nil {
					return err
				}
				if revF.json {
					return printJSON(cmd.OutOrStdout(), sa)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked standing approval %s (%s, %d uses)\n", sa.ID, clipText(sa.AgentID, 64), len(sa.Uses))
				return nil
			})
		},
	}
	revF.add(rev.Flags(), true)
	rev.Flags().StringVar(&reason, "reason", "revoked from the command line", "why (recorded in the audit log)")
	standing.AddCommand(ls, rev)
	rootCmd.AddCommand(standing)
}
