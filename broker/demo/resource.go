package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/guard"
)

// route is one endpoint of the demo resource server and the scope it needs.
type route struct {
	res, pattern, scope, does string
}

var routes = []route{
	{ResGit, "GET /repos/{owner}/{repo}/contents", "contents:read", "read the repository"},
	{ResGit, "POST /repos/{owner}/{repo}/branches", "contents:write", "pushed a branch"},
	{ResGit, "POST /repos/{owner}/{repo}/tags", "contents:write", "pushed a tag"},
	{ResGit, "POST /repos/{owner}/{repo}/pulls", "pulls:write", "opened a pull request"},
	{ResGit, "POST /repos/{owner}/{repo}/workflows/{wf}/runs", "workflows:write", "started a workflow run"},
	{ResGit, "GET /repos/{owner}/{repo}/secrets", "secrets:read", "read the repository's secrets"},
	{ResBilling, "GET /customers/{id}", "customers:read", "read a customer record"},
	{ResBilling, "GET /customers/{id}/invoices", "customers:read", "read invoices"},
	{ResBilling, "POST /refunds", "refunds:create", "issued a refund"},
	{ResWarehouse, "GET /tables/{table}/query", "tables:read", "queried a table"},
	{ResWarehouse, "POST /exports", "tables:export", "exported results"},
	{ResVault, "POST /secrets/{name}/rotate", "secrets:rotate", "rotated a credential"},
}

// ResourceServer is the demo's guarded API: one guard per resource, each
// subscribed to writ's revocation feed, so a revoked token is refused the
// moment the operator acts.
type ResourceServer struct {
	handler http.Handler
	guards  []*guard.Guard
}

// NewResourceServer builds the resource server for setup's resources.
// Each guard authenticates to writ with its resource's key.
func NewResourceServer(setup *Setup, issuer string, hc *http.Client, log *slog.Logger) (*ResourceServer, error) {
	rs := &ResourceServer{}
	mux := http.NewServeMux()
	for name, uri := range setup.Resources {
		key := setup.ResourceKeys[name]
		assert, err := guard.PrivateKeyJWT(uri, &key.JWK, jose.EdDSA)
		if err != nil {
			return nil, err
		}
		g, err := guard.New(guard.Config{Issuer: issuer, Audience: uri, PublicURL: setup.ServerURL, RequireDPoP: true,
			ClientAssertion: assert, HTTPClient: hc, Logger: log.With("resource", name)})
		if err != nil {
			return nil, fmt.Errorf("demo guard for %s: %w", name, err)
		}
		rs.guards = append(rs.guards, g)
		prefix := "/" + name
		for _, rt := range routes {
			if rt.res != name {
				continue
			}
			method, path, _ := cut(rt.pattern)
			mux.Handle(method+" "+prefix+path, g.RequireScope(rt.scope)(handle(rt)))
		}
	}
	rs.handler = mux
	return rs, nil
}

func cut(pattern string) (method, path string, ok bool) {
	for i := range len(pattern) {
		if pattern[i] == ' ' {
			return pattern[:i], pattern[i+1:], true
		}
	}
	return "", pattern, false
}

// handle answers a guarded call with what the agent did.
func handle(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"ok": true, "agent": p.Agent, "grant": p.GrantID, "did": rt.does, "path": r.URL.Path,
		})
	})
}

// Serve runs the guards and serves on ln until ctx ends.
func (rs *ResourceServer) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, g := range rs.guards {
		wg.Go(func() { _ = g.Run(ctx) })
	}
	srv := &http.Server{Handler: rs.handler, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, stop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer stop()
		_ = srv.Shutdown(shut)
		<-errc
		return nil
	}
}
