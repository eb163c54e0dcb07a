package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
)

// TestServeWithRemoteConsoleInTmux runs the team deployment: `writ serve`
// headless, `writ console --server` in tmux approving an agent's request,
// a guarded resource server accepting the token, then `writ revoke-all`
// from a shell: the console shows FROZEN and the guard refuses the token.
func TestServeWithRemoteConsoleInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the end-to-end console test needs it (.ci/run installs it)")
	}
	dir := t.TempDir()
	bin := buildWrit(t)
	state := filepath.Join(dir, "state")
	const resource = "https://git.acme.example"

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	server := "http://" + addr

	agentKey, err := agent.GenerateKey("release-bot", jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	agentKey.Issuer = server
	keyFile := filepath.Join(dir, "release-bot.key.json")
	if err := agentKey.Save(keyFile); err != nil {
		t.Fatal(err)
	}
	rsKey, err := agent.GenerateKey(resource, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k *agent.Key) string {
		b, err := json.Marshal(k.PublicJWK())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg := fmt.Sprintf(`resources:
  - uri: %s
    name: Source hosting
    keys:
      - %s
    scopes:
      - {name: contents:read, risk: low, description: Read repository contents}
agents:
  - id: release-bot
    keys:
      - %s
    ceiling:
      - resource: %s
        scopes: [contents:read]
`, resource, jwk(rsKey), jwk(agentKey), resource)
	cfgFile := filepath.Join(dir, "writ.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "XDG_STATE_HOME="+state, "XDG_CONFIG_HOME="+dir, "WRIT_SERVER=")

	var serveLog bytes.Buffer
	serve := exec.Command(bin, "serve", "--dev-oidc", "dana", "--config", cfgFile, "--db", filepath.Join(dir, "writ.db"), "--listen", addr)
	serve.Env, serve.Stdout, serve.Stderr = env, &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("writ serve said:\n%s", serveLog.String())
		}
	})
	waitUntil(t, "writ serve to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	s := &tmuxSession{t: t, name: fmt.Sprintf("writ-e2e-serve-%d", os.Getpid())}
	console := fmt.Sprintf("env XDG_STATE_HOME=%s XDG_CONFIG_HOME=%s %s console --server %s", state, dir, bin, server)
	s.run("new-session", "-d", "-s", s.name, "-x", "160", "-y", "40", console)
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.name).Run() })
	s.waitFor("the operator signed in through the server", contains("Dana Demo"))
	s.waitFor("the server in the header", contains("server "+server))

	// The agent asks and waits; the console approves (low risk: one key).
	var agentOut bytes.Buffer
	ask := exec.Command(bin, "agent", "request", "--key", keyFile, "--scope", "contents:read",
		"--intent", "e2e: read the repository", "--resource", resource, "--wait")
	ask.Env, ask.Stdout, ask.Stderr = env, &agentOut, &agentOut
	if err := ask.Start(); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the request in the remote console", regexp.MustCompile(`release-bot .*e2e: read the repo`).MatchString)
	s.keys("a")
	if err := ask.Wait(); err != nil {
		t.Fatalf("agent request: %v\n%s", err, agentOut.String())
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(agentOut.Bytes()[bytes.IndexByte(agentOut.Bytes(), '{'):], &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("agent output: %v\n%s", err, agentOut.String())
	}
	s.waitFor("the grant counted in the header", contains("1 active grant"))

	// A resource server guarded by writ's SDK, following the revocation feed.
	assertion, err := guard.PrivateKeyJWT(resource, &rsKey.JWK, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Config{Issuer: server, Audience: resource, PublicURL: "http://rs.test", ClientAssertion: assertion})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = g.Run(ctx) }()
	waitUntil(t, "the guard to follow the feed", func() bool { ok, _ := g.Ready(); return ok })
	call := func() error {
		proof, err := dpop.NewProof(&agentKey.JWK, jose.EdDSA, "GET", "http://rs.test/repos", dpop.ProofOptions{AccessToken: tok.AccessToken})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://rs.test/repos", nil)
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set("DPoP", proof)
		_, err = g.Check(ctx, r)
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("the guard refused a live token: %v", err)
	}

	// Break-glass from a shell, signed in as the console's operator.
	out, err := exec.Command("env", "XDG_STATE_HOME="+state, "XDG_CONFIG_HOME="+dir, bin, "revoke-all", "--yes",
		"--server", server, "--reason", "e2e drill").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "every grant revoked") {
		t.Fatalf("writ revoke-all: %v\n%s", err, out)
	}
	s.waitFor("FROZEN in the remote console", contains("FROZEN"))
	waitUntil(t, "the guard to refuse the revoked token", func() bool {
		e, ok := call().(*guard.Error)
		return ok && e.Reason == guard.ReasonRevoked
	})
	// Quitting the remote console asks nothing and leaves the server up.
	s.keys("q")
	waitUntil(t, "the console to quit", func() bool {
		return exec.Command("tmux", "has-session", "-t", s.name).Run() != nil
	})
	if err := serve.Process.Signal(syscallZero()); err != nil {
		t.Fatalf("writ serve stopped with the console: %v", err)
	}
}

// waitUntil waits for cond with a generous deadline (a hang detector).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
