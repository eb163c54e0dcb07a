package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
	"github.com/writhq/writ/broker/paging"
	"github.com/writhq/writ/broker/policy"
)

// The operator API (/v1/) shares the agent API's public URL. Remote
// consoles and the operator CLI sign in at the configured OIDC provider
// and exchange the ID token there for an operator token.
func init() {
	apiMounts = append(apiMounts, mountOperatorAPI)
}

// operatorAPIFlags are the flags of `writ serve` that configure the
// operator API.
type operatorAPIFlags struct {
	oidcIssuer    string
	clientID      string
	approverGroup string
	groupsClaim   string
	freshAuth     time.Duration
	devOIDC       string // a username at an in-process development provider
	paging        string // the paging and escalation file
}

func (f *operatorAPIFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.oidcIssuer, "oidc-issuer", "", "the identity provider operators sign in at (env WRIT_OIDC_ISSUER); without it the operator API is off")
	fl.StringVar(&f.clientID, "oidc-client-id", "", "writ's client id at the provider: the audience of operators' ID tokens (env WRIT_OIDC_CLIENT_ID)")
	fl.StringVar(&f.approverGroup, "approver-group", operator.DefaultApproverGroup, "group an operator must be in")
	fl.StringVar(&f.groupsClaim, "groups-claim", operator.DefaultGroupsClaim, "ID-token claim holding the groups (a dotted path for nested claims)")
	fl.DurationVar(&f.freshAuth, "fresh-auth", 0, "approving a critical-risk request, revoke-all and unfreeze need a sign-in at most this old (e.g. 10m; 0: no such check)")
	fl.StringVar(&f.paging, "paging", "", "page, escalate and auto-deny waiting requests as this YAML file says (see README, Paging and escalation)")
	fl.StringVar(&f.devOIDC, "dev-oidc", "", "run the development identity provider on loopback and sign every device code in as this user (dana): for trying writ out, never for real use")
}

// operatorAPIRuntime is what the serve command hands the mount.
type operatorAPIRuntime struct {
	flags    operatorAPIFlags
	verifier opapi.IDTokenVerifier
	policy   atomic.Pointer[opapi.PolicyStatus]
}

// operatorAPI is set by `writ serve` before the API is built; the console
// leaves it nil (the embedded console has its own operator).
var operatorAPI atomic.Pointer[operatorAPIRuntime]

// prepareOperatorAPI checks the flags and builds the ID token verifier;
// with --dev-oidc it starts the development provider first.
func prepareOperatorAPI(ctx context.Context, f operatorAPIFlags, env *brokerEnv) (*operatorAPIRuntime, error) {
	if f.devOIDC != "" {
		if f.oidcIssuer != "" {
			return nil, errors.New("--dev-oidc brings its own provider: do not set --oidc-issuer with it")
		}
		idp, err := devidp.Start(ctx, devidp.Options{AutoApprove: f.devOIDC})
		if err != nil {
			return nil, err
		}
		f.oidcIssuer, f.clientID, f.approverGroup = idp.Issuer(), devidp.ClientID, devidp.ApproverGroup
		env.Log.Warn("DEVELOPMENT identity provider: every sign-in is "+f.devOIDC+"; never use this for real", "issuer", idp.Issuer())
	}
	if f.oidcIssuer == "" {
		return nil, nil
	}
	if f.clientID == "" {
		return nil, errors.New("the operator API needs --oidc-client-id with --oidc-issuer: the audience operators' ID tokens carry")
	}
	v, err := operator.New(operator.Config{Issuer: f.oidcIssuer, ClientID: f.clientID, ApproverGroup: f.approverGroup,
		GroupsClaim: f.groupsClaim, Logger: env.Log, Dev: f.devOIDC != ""})
	if err != nil {
		return nil, err
	}
	rt := &operatorAPIRuntime{flags: f, verifier: v}
	if env.Policy != nil {
		p := env.Policy.Policy()
		rt.policy.Store(&opapi.PolicyStatus{File: env.Policy.Path(), Rules: p.Len()})
		prev := env.policyEvents.fn.Load()
		env.policyEvents.set(func(p *policy.Policy, err error) {
			st := &opapi.PolicyStatus{File: env.Policy.Path(), Rules: env.Policy.Policy().Len()}
			if err != nil {
				st.Error = err.Error()
			}
			rt.policy.Store(st)
			if prev != nil {
				(*prev)(p, err)
			}
		})
	}
	return rt, nil
}

func mountOperatorAPI(srv *httpapi.Server, env *brokerEnv) error {
	rt := operatorAPI.Load()
	if rt == nil {
		srv.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"error":"temporarily_unavailable","code":"internal","error_description":"the operator API is off: start writ serve with --oidc-issuer and --oidc-client-id"}`)
		}))
		return nil
	}
	api, err := opapi.New(env.Service, opapi.Options{
		PublicURL: srv.Issuer(), Verifier: rt.verifier, OIDCIssuer: rt.flags.oidcIssuer,
		ApproverGroup: rt.flags.approverGroup, ClientID: rt.flags.clientID, GroupsClaim: rt.flags.groupsClaim,
		FreshAuth: rt.flags.freshAuth, Logger: env.Log,
		ShadowHits: func() map[string]uint64 {
			if env.Policy == nil {
				return nil
			}
			return env.Policy.ShadowHits()
		},
		Policy: func() opapi.PolicyStatus {
			if p := rt.policy.Load(); p != nil {
				return *p
			}
			return opapi.PolicyStatus{}
		},
	})
	if err != nil {
		return errors.Join(errors.New("operator API"), err)
	}
	for _, p := range api.Patterns() {
		srv.Handle(p, api)
	}
	env.runners = append(env.runners, api.Run)
	env.Log.Info("operator API on", "url", srv.Issuer()+"/v1/", "oidc_issuer", rt.flags.oidcIssuer,
		"approver_group", rt.flags.approverGroup, "fresh_auth", rt.flags.freshAuth)
	return nil
}

// addPager runs paging and escalation from the file at path, if one is
// named: `writ serve --paging paging.yaml`.
func addPager(path string, env *brokerEnv) error {
	if path == "" {
		return nil
	}
	cfg, err := paging.Load(path)
	if err != nil {
		return err
	}
	p := paging.New(cfg, env.Service, paging.Options{Logger: env.Log})
	env.runners = append(env.runners, p.Run)
	env.Log.Info("paging on", "file", path, "notify_after", cfg.NotifyAfter, "escalate_after", cfg.EscalateAfter,
		"escalate_to", cfg.EscalateTo, "auto_deny_after", cfg.AutoDenyAfter)
	return nil
}
