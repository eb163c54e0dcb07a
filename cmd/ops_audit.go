package cmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
)

// `writ audit tail` reads the audit log of a writ server through the
// operator API; `writ audit verify` and `export` read a local store.
func init() {
	var f remoteFlags
	var n int
	var follow bool
	tail := &cobra.Command{
		Use:   "tail [-n N] [--follow]",
		Short: "Print the newest audit entries of a writ server, and with --follow every new one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRemote(cmd, &f, func(ctx context.Context, r *remote) error {
				var events <-chan broker.Event
				if follow {
					// Subscribe before reading, so nothing falls between.
					events = r.Subscribe(ctx)
				}
				es, err := r.Audit(ctx, broker.AuditFilter{Limit: n})
				if err != nil {
					return err
				}
				slices.Reverse(es) // oldest first, like tail
				var last uint64
				for _, e := range es {
					printAudit(cmd.OutOrStdout(), e, f.json)
					last = max(last, e.Seq)
				}
				if !follow {
					return nil
				}
				for {
					select {
					case <-ctx.Done():
						return nil
					case _, ok := <-events:
						if !ok {
							return nil
						}
					}
					// Drain what else is queued, then read what is new.
					for len(events) > 0 {
						<-events
					}
					es, err := r.Audit(ctx, broker.AuditFilter{Limit: 1000})
					if err != nil {
						return err
					}
					slices.Reverse(es)
					for _, e := range es {
						if e.Seq > last {
							printAudit(cmd.OutOrStdout(), e, f.json)
							last = e.Seq
						}
					}
				}
			})
		},
	}
	f.add(tail.Flags(), false)
	tail.Flags().IntVarP(&n, "lines", "n", 20, "how many of the newest entries to print first (at most 1000)")
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries as they are written")
	for _, c := range rootCmd.Commands() {
		if c.Name() == "audit" {
			c.AddCommand(tail)
			return
		}
	}
	panic("writ audit is not registered before audit tail")
}

func printAudit(w io.Writer, e *broker.AuditEntry, asJSON bool) {
	if asJSON {
		_ = printJSON(w, e)
		return
	}
	who := e.Actor
	if e.Operator != nil {
		who = e.Operator.Display()
	}
	fmt.Fprintf(w, "%6d  %s  %-18s %-28s %s\n", e.Seq, e.At.Local().Format(time.DateTime), e.Kind, clipText(who, 28), clipText(e.Message, 160))
}
