package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
)

// The operator CLI's agent and break-glass commands: agents ls, revoke,
// quarantine, release; revoke-all; freeze and unfreeze.
func init() {
	agents := &cobra.Command{Use: "agents", Short: "List agents and revoke, quarantine or release one on a writ server"}
	var alsF remoteFlags
	als := &cobra.Command{
		Use: "ls", Short: "List the agents and their state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &alsF, func(ctx context.Context, r *remote) error {
				as, err := r.AgentList(ctx)
				if err != nil {
					return err
				}
				if alsF.json {
					return printJSON(cmd.OutOrStdout(), as)
				}
				tw := table(cmd.OutOrStdout())
				fmt.Fprintln(tw, "ID\tNAME\tSTATE\tLAST SEEN")
				now := time.Now()
				for _, a := range as {
					st := "active"
					if a.State.Quarantined {
						st = "QUARANTINED"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clipText(a.ID, 40), clipText(a.Name, 40), st, ago(now, a.State.LastSeen))
				}
				return tw.Flush()
			})
		},
	}
	alsF.add(als.Flags(), false)
	agentAction := func(use, short string, quarantine bool) *cobra.Command {
		var f remoteFlags
		var reason string
		c := &cobra.Command{
			Use: use + " AGENT_ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRemote(cmd, &f, func(ctx context.Context, r *remote) error {
					what := "Revoke every grant agent " + args[0] + " holds?"
					if quarantine {
						what = "Revoke every grant agent " + args[0] + " holds and quarantine it (no new requests until released)?"
					}
					if err := confirm(cmd, &f, what); err != nil {
						return err
					}
					rev, err := r.RevokeAgent(ctx, broker.Operator{}, args[0], reason, quarantine)
					if err != nil {
						return err
					}
					if f.json {
						return printJSON(cmd.OutOrStdout(), rev)
					}
					verb := "revoked every grant of"
					if quarantine {
						verb = "revoked every grant of and quarantined"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", verb, args[0])
					return nil
				})
			},
		}
		f.add(c.Flags(), true)
		c.Flags().StringVar(&reason, "reason", "revoked from the command line", "why (recorded in the audit log)")
		return c
	}
	var relF remoteFlags
	rel := &cobra.Command{
		Use: "release AGENT_ID", Short: "Release a quarantined agent (its revoked grants stay revoked)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRemote(cmd, &relF, func(ctx context.Context, r *remote) error {
				if err := r.Release(ctx, broker.Operator{}, args[0]); err != nil {
					return err
				}
				if relF.json {
					return printJSON(cmd.OutOrStdout(), map[string]string{"released": args[0]})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "released %s from quarantine\n", args[0])
				return nil
			})
		},
	}
	relF.add(rel.Flags(), false)
	agents.AddCommand(als, agentAction("revoke", "Revoke every grant an agent holds", false),
		agentAction("quarantine", "Revoke every grant an agent holds and refuse its requests until released", true), rel)
	rootCmd.AddCommand(agents)

	var raF remoteFlags
	var raReason string
	var noFreeze bool
	ra := &cobra.Command{
		Use: "revoke-all", Short: "Revoke every grant at once and freeze issuance (break-glass)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &raF, func(ctx context.Context, r *remote) error {
				what := "Revoke EVERY grant and FREEZE issuance? Every agent token stops working at once."
				if noFreeze {
					what = "Revoke EVERY grant? Every agent token stops working at once."
				}
				if err := confirm(cmd, &raF, what); err != nil {
					return err
				}
				rev, err := r.RevokeAll(ctx, broker.Operator{}, raReason, !noFreeze)
				if err != nil {
					return freshError(err)
				}
				if raF.json {
					return printJSON(cmd.OutOrStdout(), rev)
				}
				state := "issuance is FROZEN (writ unfreeze to resume)"
				if noFreeze {
					state = "issuance continues"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "every grant revoked (epoch %d); %s\n", rev.Epoch, state)
				return nil
			})
		},
	}
	raF.add(ra.Flags(), true)
	ra.Flags().StringVar(&raReason, "reason", "revoke-all from the command line", "why (recorded in the audit log and sent to resource servers)")
	ra.Flags().BoolVar(&noFreeze, "no-freeze", false, "revoke everything but keep issuing")
	rootCmd.AddCommand(ra)

	freezeCmd := func(unfreeze bool) *cobra.Command {
		var f remoteFlags
		var reason string
		use, short := "freeze", "Stop all issuance: no approvals take effect, no tokens are minted; revocation still works"
		if unfreeze {
			use, short = "unfreeze", "Let approvals and minting resume"
		}
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runRemote(cmd, &f, func(ctx context.Context, r *remote) error {
					what := "Freeze issuance?"
					if unfreeze {
						what = "Unfreeze issuance? Approvals and token minting resume."
					}
					if err := confirm(cmd, &f, what); err != nil {
						return err
					}
					var err error
					if unfreeze {
						err = r.Unfreeze(ctx, broker.Operator{}, reason)
					} else {
						err = r.Freeze(ctx, reason)
					}
					if err != nil {
						return freshError(err)
					}
					st := r.IssuerStatus()
					if f.json {
						return printJSON(cmd.OutOrStdout(), st)
					}
					if st.Frozen {
						fmt.Fprintln(cmd.OutOrStdout(), "issuance is FROZEN")
					} else {
						fmt.Fprintln(cmd.OutOrStdout(), "issuance is LIVE")
					}
					if h := st.Store; h != nil && !h.Writable {
						fmt.Fprintf(cmd.OutOrStdout(), "the store cannot write since %s: %s\n", h.Since.Local().Format(time.DateTime), h.Error)
					}
					return nil
				})
			},
		}
		f.add(c.Flags(), true)
		c.Flags().StringVar(&reason, "reason", use+" from the command line", "why (recorded in the audit log)")
		return c
	}
	rootCmd.AddCommand(freezeCmd(false), freezeCmd(true))
}
