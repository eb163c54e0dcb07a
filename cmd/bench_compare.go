package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/load"
)

// providerTarget names panva's oidc-provider in results.
const providerTarget = "oidc-provider"

// providerSubmit is the backchannel request of a full cycle at
// oidc-provider: CIBA needs the openid scope; login_hint names the
// account its triggerAuthenticationDevice approves for.
var providerSubmit = url.Values{"scope": {"openid"}, "login_hint": {"load"}}

// providerClients is the CLIENTS file bench-provider.mjs reads.
type providerClients struct {
	Alg      string           `json:"alg"`
	Agents   []providerClient `json:"agents"`
	Resource providerClient   `json:"resource"`
}

type providerClient struct {
	ClientID string             `json:"client_id"`
	JWKS     jose.JSONWebKeySet `json:"jwks"`
}

func toProviderClient(k *agent.Key) providerClient {
	return providerClient{ClientID: k.AgentID, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.PublicJWK()}}}
}

// startProvider starts oidc-provider (.ci/oidc/bench-provider.mjs under
// oidcDir) on a free loopback port, with setup's agents and resource
// server registered as its clients; it installs the package first (npm
// ci from the committed lock file) when it is not installed.
func startProvider(ctx context.Context, dir, oidcDir string, setup *load.Setup) (*benchChild, error) {
	script := filepath.Join(oidcDir, "bench-provider.mjs")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("--compare needs %s (run from writ's source tree or set --oidc-dir): %w", script, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("--compare needs node (>= 20) on PATH: %w", err)
	}
	if _, err := os.Stat(filepath.Join(oidcDir, "node_modules", "oidc-provider")); err != nil {
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		npm.Dir = oidcDir
		if out, err := npm.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("install oidc-provider in %s (npm ci): %w\n%s", oidcDir, err, out)
		}
	}
	pc := providerClients{Alg: setup.Resource.JWK.Algorithm, Resource: toProviderClient(setup.Resource)}
	for _, k := range setup.Agents {
		pc.Agents = append(pc.Agents, toProviderClient(k))
	}
	b, err := json.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("encode oidc-provider's clients: %w", err)
	}
	clientsPath := filepath.Join(dir, "provider-clients.json")
	if err := os.WriteFile(clientsPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", clientsPath, err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	c := exec.Command(node, "bench-provider.mjs")
	c.Dir = oidcDir
	c.Env = append(childEnv(), "PORT="+port, "CLIENTS="+clientsPath)
	issuer := "http://" + addr
	return startChild(ctx, providerTarget, c, issuer, issuer+"/healthz", filepath.Join(dir, "oidc-provider.log"))
}
