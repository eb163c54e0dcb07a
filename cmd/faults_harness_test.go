package cmd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/ratelimit"
	"github.com/writhq/writ/store"
)

// faultRig is what the fault tests share: a built writ, a generated
// configuration whose even-numbered agents the policy approves and whose
// odd-numbered ones wait for an operator, and one store and one loopback
// address that every restart of `writ serve` reuses (the issuer URL, and
// so every token's iss, stays the same across restarts).
type faultRig struct {
	t      *testing.T
	bin    string
	dir    string
	db     string
	addr   string
	setup  *load.Setup
	cfg    string
	policy string
	// dpopKeys are the agents' DPoP keys, so the test can present their
	// tokens to a guard with proofs of its own.
	dpopKeys []ed25519.PrivateKey
}

// faultPolicy approves the even-numbered load agents' requests at
// submission; the others wait for an operator.
const faultPolicy = `rules:
  - name: even-agents
    when: agent.id.matches("[02468]$")
    effect:
      auto_approve: true
`

func newFaultRig(t *testing.T, agents int) *faultRig {
	t.Helper()
	if testing.Short() {
		t.Skip("fault tests build writ and run writ serve")
	}
	r := &faultRig{t: t, bin: buildWrit(t), dir: t.TempDir()}
	r.db = filepath.Join(r.dir, "writ.db")
	var err error
	if r.addr, err = freeLoopbackAddr(); err != nil {
		t.Fatal(err)
	}
	if r.setup, err = load.NewSetup(agents, jose.EdDSA); err != nil {
		t.Fatal(err)
	}
	raw, err := r.setup.ConfigYAML()
	if err != nil {
		t.Fatal(err)
	}
	// The per-agent submission brake is not what these tests are about.
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	lim, _ := m["limits"].(map[string]any)
	lim["submit_rate"], lim["submit_burst"] = 1000, 1000
	if raw, err = yaml.Marshal(m); err != nil {
		t.Fatal(err)
	}
	r.cfg, r.policy = filepath.Join(r.dir, "writ.yaml"), filepath.Join(r.dir, "policy.yaml")
	if err := os.WriteFile(r.cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.policy, []byte(faultPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	for range agents {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r.dpopKeys = append(r.dpopKeys, k)
	}
	return r
}

func (r *faultRig) issuer() string { return "http://" + r.addr }

// start runs `writ serve --dev-oidc dana` over the rig's store and waits
// until it answers.
func (r *faultRig) start(name string, extra ...string) *benchChild {
	r.t.Helper()
	return r.serve(name, append([]string{"--dev-oidc", "dana"}, extra...)...)
}

// serve runs `writ serve` with extra flags over the rig's store.
func (r *faultRig) serve(name string, extra ...string) *benchChild {
	r.t.Helper()
	args := append([]string{"serve", "--config", r.cfg, "--policy", r.policy, "--db", r.db, "--listen", r.addr}, extra...)
	c := exec.Command(r.bin, args...)
	c.Env = append(childEnv(), "XDG_STATE_HOME="+r.dir, "XDG_CONFIG_HOME="+r.dir)
	child, err := startChild(r.t.Context(), "writ serve", c, r.issuer(), r.issuer()+"/healthz", filepath.Join(r.dir, name+".log"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = child.stop() })
	return child
}

// operator signs dana in at the server's development provider (device
// flow, approved by the provider at once) and returns an operator API
// client that does not retry: a call either got its answer or failed.
func (r *faultRig) operator(ctx context.Context) *client.Client {
	r.t.Helper()
	li, err := client.LoginInfo(ctx, r.issuer(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	oc, err := operator.New(operator.Config{Issuer: li.OIDCIssuer, ClientID: li.ClientID, ApproverGroup: li.ApproverGroup,
		GroupsClaim: li.GroupsClaim, Dev: true})
	if err != nil {
		r.t.Fatal(err)
	}
	da, err := oc.StartDevice(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	sess, err := oc.WaitDevice(ctx, da)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := client.New(client.Options{Server: r.issuer(), RetryFor: time.Millisecond, Backoff: time.Millisecond,
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		IDToken:    func(context.Context) (string, error) { return sess.IDToken(), nil }})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := c.SignIn(ctx); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// agent is load agent i's client, its tokens bound to r.dpopKeys[i].
func (r *faultRig) agent(ctx context.Context, i int) *agent.Client {
	r.t.Helper()
	c, err := agent.New(ctx, r.issuer(), r.setup.Agents[i], agent.Options{
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, DPoPKey: r.dpopKeys[i], DPoPAlg: jose.EdDSA})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// introspect asks writ about tok as the load resource server, with a
// client assertion of its own.
func (r *faultRig) introspect(ctx context.Context, tok string) (bool, error) {
	assert, err := guard.PrivateKeyJWT(load.ResourceURI, &r.setup.Resource.JWK, jose.EdDSA)
	if err != nil {
		return false, err
	}
	a, err := assert(ctx, r.issuer())
	if err != nil {
		return false, err
	}
	form := url.Values{"token": {tok}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {a}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.issuer()+"/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out struct {
		Active *bool  `json:"active"`
		Error  string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, fmt.Errorf("introspection answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || out.Active == nil {
		return false, fmt.Errorf("introspection: %d %s", resp.StatusCode, out.Error)
	}
	return *out.Active, nil
}

// guard returns a resource-server guard following the running server's
// revocation feed, ready (caught up) when it returns.
func (r *faultRig) guard(ctx context.Context) *guard.Guard {
	r.t.Helper()
	assert, err := guard.PrivateKeyJWT(load.ResourceURI, &r.setup.Resource.JWK, jose.EdDSA)
	if err != nil {
		r.t.Fatal(err)
	}
	// The test presents every revoked token of an agent at once: no
	// per-agent request limit.
	g, err := guard.New(guard.Config{Issuer: r.issuer(), Audience: load.ResourceURI, PublicURL: "http://rs.test",
		ClientAssertion: assert, ClientLimit: ratelimit.Limit{PerSecond: -1}})
	if err != nil {
		r.t.Fatal(err)
	}
	go func() { _ = g.Run(ctx) }()
	waitUntil(r.t, "the guard to catch up with the feed", func() bool { ok, _ := g.Ready(); return ok })
	return g
}

// check presents agent i's token to g with a fresh proof of its DPoP key.
func (r *faultRig) check(ctx context.Context, g *guard.Guard, i int, tok string) error {
	proof, err := dpop.NewProof(r.dpopKeys[i], jose.EdDSA, http.MethodGet, "http://rs.test/items",
		dpop.ProofOptions{AccessToken: tok})
	if err != nil {
		return err
	}
	req := httptest.NewRequest(http.MethodGet, "http://rs.test/items", nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	_, err = g.Check(ctx, req)
	return err
}

// openStore opens the rig's store in this process (the server must not be
// running) and checks it: bbolt's consistency check and the audit chain.
func (r *faultRig) openStore(what string) *store.Store {
	r.t.Helper()
	st, err := store.Open(r.db, store.Options{Timeout: 10 * time.Second})
	if err != nil {
		r.t.Fatalf("%s: open the store: %v", what, err)
	}
	if err := st.Check(); err != nil {
		st.Close()
		r.t.Fatalf("%s: %v", what, err)
	}
	if _, err := broker.VerifyAuditLog(context.Background(), st); err != nil {
		st.Close()
		r.t.Fatalf("%s: audit chain: %v", what, err)
	}
	return st
}

// tokenClaims reads a token's jti and sid (its grant) without verifying
// it: the test only names tokens it was handed by writ.
func tokenClaims(tok string) (jti, grant string, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", "", errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", err
	}
	var c struct {
		JTI string `json:"jti"`
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", "", err
	}
	return c.JTI, c.SID, nil
}
