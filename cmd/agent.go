package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/wire"
)

func init() {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Act as an agent: make a key, request a task, wait for the token",
		Long: `Tools for agent authors. 'writ agent keygen' makes an agent's key pair and prints
the public key to paste into writ's configuration; 'writ agent request' asks for
a task and, with --wait, prints the token once an operator approves. Output is
JSON, for scripts.`,
	}
	cmd.AddCommand(agentKeygenCmd(), agentRequestCmd(), agentPollCmd(), agentDoneCmd())
	rootCmd.AddCommand(cmd)
}

func agentKeygenCmd() *cobra.Command {
	var id, out, alg, issuer string
	c := &cobra.Command{
		Use:   "keygen --id AGENT_ID",
		Short: "Make an agent key pair (file mode 0600) and print its public key for the configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return errors.New("--id is required: the agent's id in writ's configuration")
			}
			if out == "" {
				out = id + ".key.json"
			}
			k, err := agent.GenerateKey(id, jose.SignatureAlgorithm(alg))
			if err != nil {
				return err
			}
			k.Issuer = strings.TrimSuffix(issuer, "/")
			if err := k.Save(out); err != nil {
				return err
			}
			pub, err := json.Marshal(k.PublicJWK())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (keep it private); add this agent to writ's configuration:\n\n", out)
			fmt.Fprint(cmd.OutOrStdout(), keygenBlock(id, string(pub)))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&id, "id", "", "the agent's id (its client_id)")
	f.StringVar(&out, "out", "", "key file to write (default <id>.key.json); never overwritten")
	f.StringVar(&alg, "alg", "EdDSA", "key algorithm: EdDSA or ES256")
	f.StringVar(&issuer, "issuer", "", "writ's public URL, remembered in the key file")
	return c
}

// agentClientFlags are the flags every request-side command shares.
type agentClientFlags struct {
	keyFile string
	issuer  string
	timeout time.Duration
}

func (f *agentClientFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.keyFile, "key", "", "the agent's key file (from writ agent keygen; env WRIT_KEY)")
	c.Flags().StringVar(&f.issuer, "issuer", "", "writ's public URL (default: the key file's, or http://"+DefaultListen+")")
	c.Flags().DurationVar(&f.timeout, "timeout", 0, "give up after this long (default: when the request expires)")
}

// client loads the key and discovers writ. The agent's own key is the
// DPoP key, so the token a command prints is usable by whoever holds the
// key file, and by nobody else.
func (f *agentClientFlags) client(ctx context.Context) (*agent.Client, error) {
	if f.keyFile == "" {
		return nil, errors.New("--key is required: the agent's key file")
	}
	k, err := agent.LoadKey(f.keyFile)
	if err != nil {
		return nil, err
	}
	issuer := f.issuer
	if issuer == "" && k.Issuer == "" {
		issuer = "http://" + DefaultListen
	}
	return agent.New(ctx, issuer, k, agent.Options{DPoPKey: &k.JWK, DPoPAlg: jose.SignatureAlgorithm(k.JWK.Algorithm)})
}

func agentRequestCmd() *cobra.Command {
	var cf agentClientFlags
	var tr agent.TaskRequest
	var scopes, details []string
	var wait bool
	c := &cobra.Command{
		Use:   "request --key FILE --scope SCOPE --intent TEXT [--resource URI] [--wait]",
		Short: "Ask for a task; print the acknowledgement, or with --wait the token, as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range scopes {
				tr.Scopes = append(tr.Scopes, strings.Fields(s)...)
			}
			for _, d := range details {
				var one wire.AuthorizationDetail
				if err := json.Unmarshal([]byte(d), &one); err != nil {
					return fmt.Errorf("--detail %q is not a JSON authorization detail: %w", d, err)
				}
				if one.Type == "" {
					one.Type = wire.TaskDetailType
				}
				tr.Details = append(tr.Details, one)
			}
			ctx, cancel := withOptionalTimeout(cmd.Context(), cf.timeout)
			defer cancel()
			c, err := cf.client(ctx)
			if err != nil {
				return err
			}
			p, err := c.Request(ctx, tr)
			if err != nil {
				return printAgentError(cmd.OutOrStdout(), err)
			}
			if !wait {
				return printJSON(cmd.OutOrStdout(), map[string]any{
					"auth_req_id": p.ID, "expires_in": int64(time.Until(p.ExpiresAt).Round(time.Second) / time.Second),
					"interval": int64(p.Interval / time.Second),
				})
			}
			return waitAndPrint(ctx, cmd, c, p)
		},
	}
	cf.register(c)
	f := c.Flags()
	f.StringArrayVar(&scopes, "scope", nil, "a scope to ask for (repeat, or space-separate)")
	f.StringVar(&tr.Intent, "intent", "", "what the task is, for the operator to read")
	f.StringVar(&tr.Resource, "resource", "", "the resource server (audience); optional if the agent may ask for one only")
	f.DurationVar(&tr.TTL, "ttl", 0, "how long the grant should live (default: writ's default)")
	f.DurationVar(&tr.Expiry, "expiry", 0, "how long to wait for a decision (default: writ's review deadline)")
	f.StringVar(&tr.ParentID, "parent", "", "the auth_req_id of the task this one follows on from")
	f.StringVar(&tr.LoginHint, "login-hint", "", "the approver queue (default oncall)")
	f.StringArrayVar(&details, "detail", nil, `an authorization detail as JSON, e.g. '{"actions":["pulls:write"],"locations":["https://git.example/acme/web"]}' (repeatable)`)
	f.BoolVar(&tr.OpenID, "openid", false, "also ask for an ID token naming the approving operator")
	f.BoolVar(&wait, "wait", false, "wait for the decision and print the token")
	return c
}

func agentPollCmd() *cobra.Command {
	var cf agentClientFlags
	var id string
	var wait bool
	c := &cobra.Command{
		Use:   "poll --key FILE --id AUTH_REQ_ID [--wait]",
		Short: "Ask whether a task was decided; print the token as JSON once it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := withOptionalTimeout(cmd.Context(), cf.timeout)
			defer cancel()
			c, err := cf.client(ctx)
			if err != nil {
				return err
			}
			p, err := c.Resume(id, 0)
			if err != nil {
				return err
			}
			if wait {
				return waitAndPrint(ctx, cmd, c, p)
			}
			task, err := c.Poll(ctx, p)
			if err != nil {
				return printAgentError(cmd.OutOrStdout(), err)
			}
			return printJSON(cmd.OutOrStdout(), taskJSON(task))
		},
	}
	cf.register(c)
	c.Flags().StringVar(&id, "id", "", "the task's auth_req_id")
	c.Flags().BoolVar(&wait, "wait", false, "keep polling until the decision")
	return c
}

func agentDoneCmd() *cobra.Command {
	var cf agentClientFlags
	var token string
	c := &cobra.Command{
		Use:   "done --key FILE --token ACCESS_TOKEN",
		Short: "Say a task is finished: revoke its token, completing the grant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				if err != nil {
					return err
				}
				token = strings.TrimSpace(string(b))
			}
			if token == "" {
				return errors.New("--token is required (- reads it from standard input)")
			}
			ctx, cancel := withOptionalTimeout(cmd.Context(), cf.timeout)
			defer cancel()
			c, err := cf.client(ctx)
			if err != nil {
				return err
			}
			if err := c.Revoke(ctx, token); err != nil {
				return printAgentError(cmd.OutOrStdout(), err)
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"revoked": true})
		},
	}
	cf.register(c)
	c.Flags().StringVar(&token, "token", "", "the access token (- reads it from standard input, keeping it out of ps)")
	return c
}

// waitAndPrint waits for the decision, telling stderr how it goes, and
// prints the token or the refusal.
func waitAndPrint(ctx context.Context, cmd *cobra.Command, c *agent.Client, p *agent.Pending) error {
	errw := cmd.ErrOrStderr()
	fmt.Fprintf(errw, "waiting for an operator to decide on task %s (until %s)\n", p.ID, p.ExpiresAt.Local().Format("15:04:05"))
	task, err := c.Wait(ctx, p, func(pr agent.Progress) {
		if pr.Status == "retrying" {
			fmt.Fprintf(errw, "  poll %d failed, retrying: %v\n", pr.Polls, pr.Err)
			return
		}
		fmt.Fprintf(errw, "  still waiting (%s, poll %d, every %s)\n", pr.Waited.Round(time.Second), pr.Polls, pr.Interval)
	})
	if err != nil {
		return printAgentError(cmd.OutOrStdout(), err)
	}
	return printJSON(cmd.OutOrStdout(), taskJSON(task))
}

func taskJSON(t *agent.Task) map[string]any {
	out := map[string]any{
		"auth_req_id": t.ID, "access_token": t.AccessToken, "token_type": t.TokenType,
		"expires_in": int64(time.Until(t.ExpiresAt).Round(time.Second) / time.Second),
		"expires_at": t.ExpiresAt.UTC().Format(time.RFC3339), "scope": strings.Join(t.Scopes, " "),
		"dpop_jkt": t.JKT(),
	}
	if len(t.Details) > 0 {
		out["authorization_details"] = t.Details
	}
	if t.IDToken != "" {
		out["id_token"] = t.IDToken
	}
	return out
}

// printAgentError prints writ's refusal as JSON on stdout, for scripts,
// and returns an error so the exit status is non-zero.
func printAgentError(w io.Writer, err error) error {
	var e *agent.Error
	if errors.As(err, &e) {
		_ = printJSON(w, map[string]string{"error": e.Code, "error_description": e.Description})
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func withOptionalTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}
