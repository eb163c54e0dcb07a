package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/store/storetest"
	"github.com/writhq/writ/wire/ssfwire"
)

// feedEnv is the agent API with the revocation feed mounted, as `writ
// serve` wires it, on loopback, with one resource server registered with
// a key.
type feedEnv struct {
	t      *testing.T
	svc    *broker.Service
	issuer string
	rsKey  *agent.Key // the resource server's private_key_jwt key
}

func newFeedEnv(t *testing.T) *feedEnv {
	t.Helper()
	rsKey, err := agent.GenerateKey(ssftest.Resource, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ssftest.Config()
	cfg.Resources[0].Keys = []jose.JSONWebKey{rsKey.PublicJWK()}
	ts := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	issuer := "http://" + ts.Listener.Addr().String()
	quiet := slog.New(slog.DiscardHandler)
	svc, err := broker.New(context.Background(), cfg, storetest.MustOpen(t), broker.Options{
		Issuer: issuer, Logger: quiet, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := &brokerEnv{Config: cfg, Service: svc, Log: quiet}
	api, err := newAgentAPI(env, issuer, false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = api
	ts.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range env.runners {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("feed runner: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		ts.CloseClientConnections()
		cancel()
		wg.Wait()
		ts.Close()
	})
	return &feedEnv{t: t, svc: svc, issuer: issuer, rsKey: rsKey}
}

// assertion is a fresh RFC 7523 client assertion of the resource server.
func (e *feedEnv) assertion() string {
	e.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: &e.rsKey.JWK}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		e.t.Fatal(err)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: ssftest.Resource, Subject: ssftest.Resource, Audience: jwt.Audience{e.issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
		ID: base64.RawURLEncoding.EncodeToString(id[:]),
	}).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// receiverToken gets an access token as a standard OAuth client would:
// the client credentials grant with private_key_jwt, a fresh assertion
// per token request.
func (e *feedEnv) receiverToken(ctx context.Context, tokenURL string, scopes ...string) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{
		ClientID: ssftest.Resource, TokenURL: tokenURL, Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {httpapi.AssertionTypeJWTBearer},
			"client_assertion":      {e.assertion()},
		},
	}
	return cfg.Token(ctx)
}

// call sends a JSON request with a Bearer credential and decodes the answer.
func call(t *testing.T, method, u, bearer string, body any, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, u, resp.StatusCode, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, u, resp.StatusCode, b)
	}
	return resp
}

// TestStandardReceiver follows the feed as any SSF receiver does: discover
// the transmitter and its authorization server, get an access token with
// the client credentials grant (private_key_jwt), create a poll stream,
// and receive the session-revoked SET when an operator revokes a grant.
func TestStandardReceiver(t *testing.T) {
	e := newFeedEnv(t)
	ctx := context.Background()

	var ssfMeta struct {
		Issuer                string `json:"issuer"`
		JWKSURI               string `json:"jwks_uri"`
		ConfigurationEndpoint string `json:"configuration_endpoint"`
		AuthorizationSchemes  []struct {
			SpecURN string `json:"spec_urn"`
		} `json:"authorization_schemes"`
	}
	if r := call(t, "GET", e.issuer+"/.well-known/ssf-configuration", "", nil, &ssfMeta); r.StatusCode != 200 {
		t.Fatalf("SSF discovery: %d", r.StatusCode)
	}
	if len(ssfMeta.AuthorizationSchemes) != 1 || ssfMeta.AuthorizationSchemes[0].SpecURN != "urn:ietf:rfc:6749" {
		t.Fatalf("authorization_schemes %+v", ssfMeta.AuthorizationSchemes)
	}
	var asMeta struct {
		TokenEndpoint string   `json:"token_endpoint"`
		GrantTypes    []string `json:"grant_types_supported"`
	}
	if r := call(t, "GET", e.issuer+"/.well-known/oauth-authorization-server", "", nil, &asMeta); r.StatusCode != 200 {
		t.Fatalf("AS discovery: %d", r.StatusCode)
	}

	// A read-only token may not create a stream.
	readOnly, err := e.receiverToken(ctx, asMeta.TokenEndpoint, broker.ScopeSSFRead)
	if err != nil {
		t.Fatalf("client credentials (ssf.read): %v", err)
	}
	if readOnly.TokenType != "Bearer" || readOnly.RefreshToken != "" {
		t.Fatalf("token type %q, refresh %q", readOnly.TokenType, readOnly.RefreshToken)
	}
	create := map[string]any{
		"delivery":         map[string]any{"method": ssfwire.DeliveryPoll},
		"events_requested": []string{ssfwire.EventSessionRevoked},
	}
	r := call(t, "POST", ssfMeta.ConfigurationEndpoint, readOnly.AccessToken, create, nil)
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("create with ssf.read only: %d %q, want 403 insufficient_scope", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}

	tok, err := e.receiverToken(ctx, asMeta.TokenEndpoint, broker.ScopeSSFRead, broker.ScopeSSFManage)
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	var stream ssfwire.StreamConfig
	if r := call(t, "POST", ssfMeta.ConfigurationEndpoint, tok.AccessToken, create, &stream); r.StatusCode != http.StatusCreated {
		t.Fatalf("create stream: %d", r.StatusCode)
	}
	if stream.Delivery.EndpointURL == "" || stream.Audience != ssftest.Resource {
		t.Fatalf("stream %+v", stream)
	}

	// An operator approves a task at the resource, then revokes it.
	req, err := e.svc.Submit(ctx, ssftest.Agent, broker.SubmitInput{LoginHint: "oncall", Intent: "open a PR",
		Resource: ssftest.Resource, Scopes: []string{"contents:read"}, TTL: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	grant, err := e.svc.Approve(ctx, ssftest.Operator, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Redeem(ctx, ssftest.Agent, req.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(ctx, ssftest.Operator, grant.ID, "leaked in a log"); err != nil {
		t.Fatal(err)
	}

	var jwks jose.JSONWebKeySet
	if r := call(t, "GET", ssfMeta.JWKSURI, "", nil, &jwks); r.StatusCode != 200 {
		t.Fatalf("jwks: %d", r.StatusCode)
	}
	keyFunc := func(kid string) (*jose.JSONWebKey, error) {
		if ks := jwks.Key(kid); len(ks) > 0 {
			return &ks[0], nil
		}
		return nil, errors.New("unknown kid")
	}
	deadline := time.Now().Add(30 * time.Second)
	var ack []string
	for {
		// Polling needs ssf.read only.
		var poll ssfwire.PollResponse
		if r := call(t, "POST", stream.Delivery.EndpointURL, readOnly.AccessToken,
			map[string]any{"maxEvents": 10, "returnImmediately": false, "ack": ack}, &poll); r.StatusCode != 200 {
			t.Fatalf("poll: %d", r.StatusCode)
		}
		ack = ack[:0]
		for jti, raw := range poll.Sets {
			set, err := ssfwire.VerifySET(raw, ssfwire.VerifyOptions{Issuer: ssfMeta.Issuer, Audience: ssftest.Resource, Key: keyFunc})
			if err != nil {
				t.Fatalf("SET %s: %v", jti, err)
			}
			ack = append(ack, jti)
			if set.Type == ssfwire.EventSessionRevoked && set.Subject != nil && set.Subject.Session != nil && set.Subject.Session.ID == grant.ID {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no session-revoked SET for the revoked grant")
		}
	}
}

// TestFeedRefusesTaskTokens: a task token is authority over a resource,
// not over the feed; presented there it is refused like any bad credential.
// The guard's fresh client assertion still works.
func TestFeedRefusesTaskTokens(t *testing.T) {
	e := newFeedEnv(t)
	ctx := context.Background()
	req, err := e.svc.Submit(ctx, ssftest.Agent, broker.SubmitInput{LoginHint: "oncall", Intent: "read code",
		Resource: ssftest.Resource, Scopes: []string{"contents:read"}, TTL: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, ssftest.Operator, req.ID); err != nil {
		t.Fatal(err)
	}
	task, err := e.svc.Redeem(ctx, ssftest.Agent, req.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, "GET", e.issuer+"/ssf/stream", task.AccessToken, nil, nil)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("task token at the feed: %d %q, want 401 invalid_token", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := call(t, "GET", e.issuer+"/ssf/stream", "", nil, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credential: %d", r.StatusCode)
	}
	var streams []ssfwire.StreamConfig
	if r := call(t, "GET", e.issuer+"/ssf/stream", e.assertion(), nil, &streams); r.StatusCode != http.StatusOK {
		t.Fatalf("client assertion at the feed: %d", r.StatusCode)
	}
}
