package cmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"sort"
	"text/tabwriter"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
)

// localOperator is who runs a command-line action on this machine; the
// audit log records it as such.
func localOperator() broker.Operator {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return broker.Operator{Issuer: "local", Subject: name, Name: name}
}

// openExistingBroker is openBroker for commands that only look after an
// existing issuer: a mistyped --db must not create a new store (with new
// signing keys) and report on that instead.
func openExistingBroker(ctx context.Context) (*brokerEnv, error) {
	path := dbPath()
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no store at %s: check --db (or WRIT_DB); this command never creates one", path)
	case err != nil:
		return nil, fmt.Errorf("store %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("store %s is not a file", path)
	}
	return openBroker(ctx, broker.Options{})
}

func init() {
	keys := &cobra.Command{Use: "keys", Short: "Manage the issuer's signing keys"}
	var alg string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Start signing with a new key; the old one stays published until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openExistingBroker(cmd.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			k, err := env.Service.RotateKeys(cmd.Context(), localOperator(), jose.SignatureAlgorithm(alg))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "now signing with %s key %s\n", k.Alg, k.ID)
			return nil
		},
	}
	rotate.Flags().StringVar(&alg, "alg", "", "algorithm of the new key: ES256, EdDSA or RS256 (default: the current one)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys and when retired ones leave the JWKS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openExistingBroker(cmd.Context())
			if err != nil {
				return err
			}
			defer env.Close()
			cur := env.Service.CurrentSigningKey()
			fmt.Fprintf(cmd.OutOrStdout(), "signing with %s (key %s)\n", cur.Alg, cur.ID)
			ks := env.Service.SigningKeys()
			sort.Slice(ks, func(i, j int) bool { return ks[i].CreatedAt.Before(ks[j].CreatedAt) })
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tSTATE")
			for _, k := range ks {
				state := "current"
				if !k.RetiredAt.IsZero() {
					state = "retired, published until " + k.RemoveAt.Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Alg, k.CreatedAt.Format("2006-01-02 15:04"), state)
			}
			return tw.Flush()
		},
	}
	keys.AddCommand(rotate, list)
	rootCmd.AddCommand(keys)
}
