package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
)

// serveFlags are the flags of `writ serve`, which `writ console` shares.
type serveFlags struct {
	listen      string
	publicURL   string
	tlsCert     string
	tlsKey      string
	requireDPoP bool
	policy      string // --policy: the policy file, over the configuration's
	metrics     metricsFlags
	opapi       operatorAPIFlags
	cpuProfile  string // --cpuprofile (hidden): for writ bench --profile
}

// DefaultListen is where writ serves the agent API unless told otherwise.
const DefaultListen = "127.0.0.1:8470"

// apiMounts are called with every agent API server before it serves, so
// other parts of writ (the SSF transmitter, the operator API) can add
// their routes to the same public URL: append to it from an init func.
var apiMounts []func(*httpapi.Server, *brokerEnv) error

func init() {
	var f serveFlags
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the issuer headless: the agent API, revocation feed and operator API, with no console",
		Long: `Run writ's issuer without the console: the store, background expiry, and the
HTTP API agents and resource servers use (discovery, /bc-authorize, /token,
/introspect, /revoke, /jwks, /metrics, /healthz).

It starts with no configuration file at all, so its discovery document can be
looked at at once:

  writ serve
  curl http://127.0.0.1:8470/.well-known/oauth-authorization-server

With --oidc-issuer and --oidc-client-id it also serves the operator API (/v1/):
operators sign in with 'writ login --server URL' and attach consoles with
'writ console --server URL'; the operator CLI (writ requests, grants, agents,
revoke-all, freeze, unfreeze, audit tail) works from any shell. --paging FILE
pages, escalates and auto-denies waiting requests.

The public URL is the issuer: agents and resource servers must reach writ at
exactly that URL. Behind a proxy or on a non-loopback address, set it, and use
TLS (--tls-cert/--tls-key, or a TLS-terminating proxy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConsoleConfig(cmd); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, f, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
		},
	}
	fl := serve.Flags()
	fl.StringVar(&f.listen, "listen", DefaultListen, "address to listen on (env WRIT_LISTEN)")
	fl.StringVar(&f.publicURL, "public-url", "", "the issuer URL agents use (default http(s)://<listen>; env WRIT_PUBLIC_URL)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fl.BoolVar(&f.requireDPoP, "require-dpop", false, "mint only DPoP-bound tokens, whatever the configuration says")
	addPolicyFlag(fl, &f.policy)
	addMetricsFlags(fl, &f.metrics)
	f.opapi.add(fl)
	addCPUProfileFlag(fl, &f.cpuProfile)
	rootCmd.AddCommand(serve)
}

// publicURL returns the issuer URL for the flags: --public-url without a
// trailing slash, or the scheme and the listen address.
func (f serveFlags) publicURLFor(ln net.Addr) (string, error) {
	if f.publicURL != "" {
		u, err := url.Parse(f.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("--public-url %q must be an http(s) URL without query or fragment", f.publicURL)
		}
		return strings.TrimSuffix(f.publicURL, "/"), nil
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("listening on all interfaces (%s): set --public-url to the URL agents reach writ at", f.listen)
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// runServe serves the agent API until ctx ends.
func runServe(ctx context.Context, f serveFlags, log *slog.Logger) error {
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	// The profiles end as shutdown begins, while the service is still
	// held: the heap profile then shows what serving kept alive.
	go func() { <-ctx.Done(); stopProfile() }()
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	defer ln.Close()
	issuer, err := f.publicURLFor(ln.Addr())
	if err != nil {
		return err
	}
	env, err := openServingBroker(ctx, broker.Options{Issuer: issuer, Logger: log}, f.policy)
	if err != nil {
		return err
	}
	defer env.Close()
	if f.requireDPoP {
		env.Config.RequireDPoP = true
	}
	if env.metrics, err = f.metrics.options(); err != nil {
		return err
	}
	opAPI, err := prepareOperatorAPI(ctx, f.opapi, env)
	if err != nil {
		return err
	}
	operatorAPI.Store(opAPI)
	if err := addPager(f.opapi.paging, env); err != nil {
		return err
	}
	api, err := newAgentAPI(env, issuer, f.requireDPoP, log)
	if err != nil {
		return err
	}
	stopMetrics, _, err := startMetricsListener(f.metrics.listen, api, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if !isLoopback(ln.Addr()) && f.tlsCert == "" && strings.HasPrefix(issuer, "http://") {
		log.Warn("serving plain HTTP on a non-loopback address; use --tls-cert/--tls-key or a TLS-terminating proxy")
	}
	configured := "none (no agents yet)"
	if env.ConfigPath != "" {
		configured = env.ConfigPath
	}
	policyDesc := "none (every request goes to an operator)"
	if env.Policy != nil {
		policyDesc = fmt.Sprintf("%s (%d rules)", env.Policy.Path(), env.Policy.Policy().Len())
	}
	log.Info("writ is serving the agent API", "issuer", issuer, "listen", ln.Addr().String(),
		"config", configured, "store", env.Store.Path(), "agents", len(env.Config.Agents),
		"resources", len(env.Config.Resources), "require_dpop", env.Config.RequireDPoP, "policy", policyDesc)
	return serveAPI(ctx, env, api, ln, f.tlsCert, f.tlsKey, log)
}

// newAgentAPI builds the agent API over an opened broker and lets the
// mounts add their routes.
func newAgentAPI(env *brokerEnv, issuer string, requireDPoP bool, log *slog.Logger) (*httpapi.Server, error) {
	api, err := httpapi.New(env.Service, httpapi.Options{PublicURL: issuer, RequireDPoP: requireDPoP, Logger: log,
		ResourceClients: resourceClients(env.Config), MetricsToken: env.metrics.token, MetricsElsewhere: env.metrics.elsewhere})
	if err != nil {
		return nil, err
	}
	for _, mount := range apiMounts {
		if err := mount(api, env); err != nil {
			return nil, err
		}
	}
	return api, nil
}

// serveAPI runs the service's background work and serves h on ln until
// ctx ends, then shuts down gracefully: in-flight requests finish (for up
// to 10 s), background work stops, use counts are flushed.
func serveAPI(ctx context.Context, env *brokerEnv, h http.Handler, ln net.Listener, certFile, keyFile string, log *slog.Logger) error {
	// Requests run under a context that ends a moment after shutdown
	// begins: short requests finish normally, long polls (the revocation
	// feed) see it end and return, so shutdown does not wait them out.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(func() { time.AfterFunc(2*time.Second, cancelBase) })
	if certFile != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var wg sync.WaitGroup
	for _, run := range append([]func(context.Context) error{env.Service.Run}, env.runners...) {
		wg.Go(func() {
			if err := run(runCtx); err != nil && runCtx.Err() == nil {
				log.Error("background work stopped", "err", err)
			}
		})
	}
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			log.Warn("requests still running at shutdown", "err", err)
		}
		<-errc
	}
	stopRun()
	wg.Wait()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// resourceClients are the configured resource servers that authenticate
// to writ, each as client_id = its resource URI.
func resourceClients(cfg *broker.Config) []httpapi.ResourceClient {
	var out []httpapi.ResourceClient
	for _, r := range cfg.Resources {
		if len(r.Keys) > 0 || r.Workload != nil {
			out = append(out, httpapi.ResourceClient{ID: r.URI, Keys: r.Keys, Workload: r.Workload})
		}
	}
	return out
}
