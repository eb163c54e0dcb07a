package cmd

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/policy"
)

// addPolicyFlag adds --policy to a command that takes requests.
func addPolicyFlag(fl *pflag.FlagSet, dst *string) {
	fl.StringVar(dst, "policy", "", "policy file (CEL rules evaluated for each request; reloaded when it changes; overrides the configuration's policy; env WRIT_POLICY)")
}

// policyListener is told about each reload of the policy file; the
// console sets it once its program runs, to show a file that does not
// reload.
type policyListener struct {
	fn atomic.Pointer[func(*policy.Policy, error)]
}

func (l *policyListener) set(fn func(*policy.Policy, error)) { l.fn.Store(&fn) }

func (l *policyListener) changed(p *policy.Policy, err error) {
	if fn := l.fn.Load(); fn != nil {
		(*fn)(p, err)
	}
}

// policyFile is the policy file in force: --policy beats the
// configuration's policy key; "" for none.
func policyFile(flag string, cfg *broker.Config) string {
	if flag != "" {
		return flag
	}
	return cfg.PolicyFile
}

// watchPolicy loads the policy file, if one is named, into opts.Policy
// and returns the loop that reloads it when it changes (nil for none).
// A file that does not load stops the command: writ never takes requests
// without the policy it was told to apply.
func watchPolicy(path string, opts *broker.Options, l *policyListener, log *slog.Logger) (*policy.Watcher, func(context.Context) error, error) {
	if path == "" {
		return nil, nil, nil
	}
	w, err := policy.NewWatcher(path, policy.WatchOptions{Logger: log, OnChange: l.changed})
	if err != nil {
		return nil, nil, err
	}
	opts.Policy = w
	return w, w.Run, nil
}

func init() {
	apiMounts = append(apiMounts, mountPolicyMetrics)
}

// mountPolicyMetrics publishes the policy's counters (shadow rule hits,
// evaluations by verdict) on the agent API's /metrics.
func mountPolicyMetrics(srv *httpapi.Server, env *brokerEnv) error {
	if env.Policy != nil {
		srv.Registry().MustRegister(env.Policy.Collector())
	}
	return nil
}
