package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/visible"
	"github.com/writhq/writ/store"
)

func init() {
	audit := &cobra.Command{Use: "audit", Short: "Check and export the tamper-evident audit log"}
	audit.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain and report the first broken entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.OpenReadOnly(dbPath(), store.Options{Timeout: globals.lockWait})
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := broker.VerifyAuditLog(cmd.Context(), st)
			if err != nil {
				return fmt.Errorf("%s: %w (%d entries before it verify)", st.Path(), err, n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit chain of %s verifies: %d entries\n", st.Path(), n)
			return nil
		},
	})
	var out string
	var from uint64
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the audit log as JSON lines, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.OpenReadOnly(dbPath(), store.Options{Timeout: globals.lockWait})
			if err != nil {
				return err
			}
			defer st.Close()
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("create export file: %w", err)
				}
				defer f.Close()
				w = f
			}
			return exportAudit(cmd, st, w, from)
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "-", "file to write (created, never overwritten); - for standard output")
	export.Flags().Uint64Var(&from, "from", 1, "first entry to export")
	audit.AddCommand(export)
	rootCmd.AddCommand(audit)
}

func exportAudit(cmd *cobra.Command, st *store.Store, w io.Writer, from uint64) error {
	bw := bufio.NewWriter(w)
	// One JSON object a line. Characters that read invisibly (C1 controls,
	// format characters, separators, fillers, variation selectors) are
	// written as \u escapes: the record means the same, and a terminal or
	// editor showing the file shows them.
	enc := func(e *broker.AuditEntry) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := bw.Write(visible.EscapeJSON(b)); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	}
	var v broker.ChainVerifier
	err := st.View(cmd.Context(), func(tx broker.TxReader) error {
		return tx.ForEachAudit(from, func(e *broker.AuditEntry) error {
			if from <= 1 {
				if err := v.Check(e); err != nil {
					// Export it anyway: the export is evidence; say where it broke.
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
					from = 2 // report only the first break
				}
			}
			return enc(e)
		})
	})
	if err != nil {
		return fmt.Errorf("export audit log of %s: %w", st.Path(), err)
	}
	return bw.Flush()
}
