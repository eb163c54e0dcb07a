package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/wire"
)

func TestDiscovery(t *testing.T) {
	for _, tc := range []struct{ name, path, asPath, oidcPath string }{
		{"issuer at the root", "", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
		{"issuer with a path", "/writ", "/.well-known/oauth-authorization-server/writ", "/writ/.well-known/openid-configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{publicPath: tc.path})
			base := strings.TrimSuffix(e.url, tc.path)
			for _, p := range []string{tc.asPath, tc.oidcPath} {
				e.url = base
				r := e.get(p)
				if r.Status != http.StatusOK {
					t.Fatalf("GET %s: %d %s", p, r.Status, r.Raw)
				}
				iss := base + tc.path
				if r.str("issuer") != iss {
					t.Errorf("%s: issuer %q, want exactly %q", p, r.str("issuer"), iss)
				}
				for field, want := range map[string]string{
					"token_endpoint":                      iss + "/token",
					"backchannel_authentication_endpoint": iss + "/bc-authorize",
					"introspection_endpoint":              iss + "/introspect",
					"revocation_endpoint":                 iss + "/revoke",
					"jwks_uri":                            iss + "/jwks",
				} {
					if r.str(field) != want {
						t.Errorf("%s: %s = %q, want %q", p, field, r.str(field), want)
					}
				}
				for field, want := range map[string]string{
					"grant_types_supported":                      "urn:openid:params:grant-type:ciba",
					"backchannel_token_delivery_modes_supported": "poll",
					"authorization_details_types_supported":      broker.TaskDetailType,
					"dpop_signing_alg_values_supported":          "ES256",
					"token_endpoint_auth_methods_supported":      "private_key_jwt",
				} {
					list, _ := r.Body[field].([]any)
					if !slices.Contains(list, any(want)) {
						t.Errorf("%s: %s = %v, want it to list %s", p, field, r.Body[field], want)
					}
				}
				if _, ok := r.Body["response_types_supported"]; !ok {
					t.Errorf("%s: response_types_supported is required (RFC 8414 §2)", p)
				}
			}
			e.url = base + tc.path
			// The endpoints live under the issuer's path, and the SDK finds them.
			if r := e.get("/jwks"); r.Status != http.StatusOK || len(r.Body["keys"].([]any)) == 0 {
				t.Fatalf("GET jwks: %d %s", r.Status, r.Raw)
			}
			c := e.client(e.release)
			if c.Metadata().Issuer != e.url {
				t.Errorf("SDK discovered issuer %q", c.Metadata().Issuer)
			}
		})
	}
}

// TestTaskLifecycle is the whole story over HTTP: keygen, request,
// pending, approve, token, introspect, use, done, inactive, redeem again.
func TestTaskLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.client(e.release)
	p, err := c.Request(ctx, agent.TaskRequest{
		Intent: "Open a PR fixing CVE-2026-1234", Scopes: []string{"contents:write", "pulls:write"},
		Resource: gitURI, TTL: 30 * time.Minute, OpenID: true,
		Details: []wire.AuthorizationDetail{{Type: wire.TaskDetailType, Locations: []string{gitURI + "/acme/web"},
			Actions: []string{"contents:write", "pulls:write"}, Intent: "fix CVE-2026-1234"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Interval != time.Second || p.ExpiresAt.Sub(e.clock.Now()) != broker.DefaultLimits.ReviewDeadline {
		t.Errorf("pending: interval %s, expires in %s", p.Interval, p.ExpiresAt.Sub(e.clock.Now()))
	}
	if len(p.ID) < 27 { // 20 random bytes, base64url: 160 bits (CIBA §7.3 asks ≥128)
		t.Errorf("auth_req_id %q is too short to carry 160 bits", p.ID)
	}
	if _, err := c.Poll(ctx, p); !errors.Is(err, agent.ErrPending) {
		t.Fatalf("first poll: %v, want authorization_pending", err)
	}
	req, err := e.svc.Request(ctx, p.ID)
	if err != nil || req.Intent != "Open a PR fixing CVE-2026-1234" || req.AgentID != "release-bot" {
		t.Fatalf("stored request: %+v, %v", req, err)
	}
	if _, err := e.svc.Approve(ctx, e.op, p.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	task, err := c.Poll(ctx, p)
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	if task.TokenType != "DPoP" || !slices.Equal(task.Scopes, []string{"contents:write", "pulls:write"}) ||
		len(task.Details) != 1 || task.IDToken == "" {
		t.Fatalf("task: %+v", task)
	}
	claims, err := e.svc.VerifyAccessToken(task.AccessToken)
	if err != nil || claims.Cnf == nil || claims.Cnf.JKT != task.JKT() || claims.Audience != gitURI {
		t.Fatalf("token claims: %+v, %v", claims, err)
	}

	in := e.introspect(task.AccessToken)
	if in.Status != 200 || in.Body["active"] != true || in.str("token_type") != "DPoP" ||
		in.Body["cnf"].(map[string]any)["jkt"] != task.JKT() || in.str("sid") == "" || in.str("scope") != "contents:write pulls:write" {
		t.Fatalf("introspection: %s", in.Raw)
	}
	if d, _ := in.Body["authorization_details"].([]any); len(d) != 1 {
		t.Errorf("introspection authorization_details: %v", in.Body["authorization_details"])
	}
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.svc.Grant(ctx, claims.SID); g == nil || g.Uses != 1 {
		t.Errorf("grant uses after one introspection: %+v", g)
	}

	// The token works at a resource server that checks DPoP itself.
	rs := newResourceServer(t, e)
	resp, err := task.Do(mustRequest(t, http.MethodGet, rs.URL+"/acme/web/pulls"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("resource call: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := task.Done(ctx); err != nil {
		t.Fatalf("done: %v", err)
	}
	if in := e.introspect(task.AccessToken); in.Raw != "{\"active\":false}\n" {
		t.Fatalf("introspection after done: %s", in.Raw)
	}
	if g, _ := e.svc.Grant(ctx, claims.SID); g.State != broker.GrantCompleted {
		t.Errorf("grant state after done: %s", g.State)
	}
	if err := task.Done(ctx); err != nil {
		t.Errorf("done twice: %v", err)
	}
	// Redeeming twice: the auth_req_id is dead after its token.
	if _, err := c.Poll(ctx, p); !errors.Is(err, agent.ErrInvalidGrant) {
		t.Fatalf("second redemption: %v, want invalid_grant", err)
	}
}

func TestNarrowedGrantIsVisible(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.client(e.release)
	detail := broker.AuthorizationDetail{Type: broker.TaskDetailType, Locations: []string{gitURI + "/acme/web"},
		Actions: []string{"contents:write", "workflows:write"}}
	p, err := c.Request(ctx, agent.TaskRequest{Intent: "release", Scopes: []string{"contents:write", "workflows:write"},
		Resource: gitURI, TTL: time.Hour, Details: []wire.AuthorizationDetail{wire.AuthorizationDetail(detail)}})
	if err != nil {
		t.Fatal(err)
	}
	narrow := detail.Clone()
	narrow.Actions = []string{"contents:write"}
	_, err = e.svc.Narrow(ctx, e.op, p.ID, broker.Terms{Scopes: []string{"contents:write"}, Resource: gitURI,
		TTL: 15 * time.Minute, Details: []broker.AuthorizationDetail{narrow}}, "no workflow changes")
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Poll(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(task.Scopes, []string{"contents:write"}) || len(task.Details) != 1 ||
		!slices.Equal(task.Details[0].Actions, []string{"contents:write"}) {
		t.Fatalf("narrowed task: scopes %v details %+v", task.Scopes, task.Details)
	}
	if left := task.ExpiresAt.Sub(e.clock.Now()); left > 15*time.Minute {
		t.Errorf("token lives %s, beyond the narrowed 15m", left)
	}
}

func TestDeniedWithReason(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("secrets:read"))
	if _, err := e.svc.Deny(context.Background(), e.op, id, "not part of the task"); err != nil {
		t.Fatal(err)
	}
	r := e.poll(e.release, id, dpopKey(t))
	wantError(t, r, http.StatusBadRequest, "access_denied")
	if !strings.Contains(r.str("error_description"), "not part of the task") {
		t.Errorf("denial description %q lacks the reason", r.str("error_description"))
	}
	// Through the SDK, errors.Is finds it.
	c := e.client(e.release)
	p, _ := c.Resume(id, time.Millisecond)
	if _, err := c.Poll(context.Background(), p); !errors.Is(err, agent.ErrDenied) {
		t.Errorf("SDK poll: %v, want ErrDenied", err)
	}
}

func TestSlowDown(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	s := dpopKey(t)
	wantError(t, e.poll(e.release, id, s), http.StatusBadRequest, "authorization_pending")
	wantError(t, e.poll(e.release, id, s), http.StatusBadRequest, "slow_down")
	e.clock.Advance(2 * time.Second) // the interval grew by 5 s: still too soon
	wantError(t, e.poll(e.release, id, s), http.StatusBadRequest, "slow_down")
	e.clock.Advance(11 * time.Second)
	wantError(t, e.poll(e.release, id, s), http.StatusBadRequest, "authorization_pending")
}

func TestExpiredRequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	e.clock.Advance(broker.DefaultLimits.ReviewDeadline + time.Second)
	wantError(t, e.poll(e.release, id, dpopKey(t)), http.StatusBadRequest, "expired_token")
	if _, err := e.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.poll(e.release, id, dpopKey(t)), http.StatusBadRequest, "expired_token")
	// requested_expiry shortens the wait.
	form := taskForm("contents:read")
	form.Set("requested_expiry", "30")
	r := e.post("/bc-authorize", e.authForm(e.release, form))
	if r.Status != 200 || r.Body["expires_in"] != float64(30) {
		t.Fatalf("requested_expiry 30: %s", r.Raw)
	}
	e.clock.Advance(31 * time.Second)
	wantError(t, e.poll(e.release, r.str("auth_req_id"), dpopKey(t)), http.StatusBadRequest, "expired_token")
}

func TestOtherAgentsRequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.poll(e.triage, id, dpopKey(t)), http.StatusBadRequest, "invalid_grant")
	wantError(t, e.poll(e.release, "no-such-request", dpopKey(t)), http.StatusBadRequest, "invalid_grant")
	// The rightful agent still gets its token.
	if r := e.poll(e.release, id, dpopKey(t)); r.Status != 200 {
		t.Fatalf("rightful poll: %s", r.Raw)
	}
}

func TestReplayedClientAssertion(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.assertion(e.release, nil)
	form := func() url.Values {
		f := taskForm("contents:read")
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		f.Set("client_assertion", a)
		return f
	}
	if r := e.post("/bc-authorize", form()); r.Status != 200 {
		t.Fatalf("first use: %s", r.Raw)
	}
	r := e.post("/bc-authorize", form())
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(r.str("error_description"), "already used") {
		t.Errorf("description %q", r.str("error_description"))
	}
	// A replay at another endpoint is refused too: the jti is the client's.
	f := url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {"x"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	wantError(t, e.post("/token", f), http.StatusUnauthorized, "invalid_client")
}

func TestReplayedDPoPProof(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		t.Fatal(err)
	}
	s := dpopKey(t)
	proof, err := s.Proof(http.MethodPost, e.api.Issuer()+"/token", dpop.ProofOptions{Now: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	form := func() url.Values {
		return e.authForm(e.release, url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {"unknown"}})
	}
	wantError(t, e.post("/token", form(), "DPoP", proof), http.StatusBadRequest, "invalid_grant") // proof accepted
	form2 := form()
	form2.Set("auth_req_id", id)
	r := e.post("/token", form2, "DPoP", proof)
	wantError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	if !strings.Contains(r.str("error_description"), "already used") {
		t.Errorf("description %q", r.str("error_description"))
	}
}

func TestDPoPProofChecks(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	a, b := dpopKey(t), dpopKey(t)
	tokenURL := e.api.Issuer() + "/token"
	good, _ := a.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{Now: e.clock.Now()})
	other, _ := b.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{Now: e.clock.Now()})
	// Key mismatch: a's header and claims with b's signature.
	parts, otherParts := strings.Split(good, "."), strings.Split(other, ".")
	forged := parts[0] + "." + parts[1] + "." + otherParts[2]
	wrongURL, _ := a.Proof(http.MethodPost, "https://evil.example/token", dpop.ProofOptions{Now: e.clock.Now()})
	hostHeader, _ := a.Proof(http.MethodPost, "http://writ.internal:8080/token", dpop.ProofOptions{Now: e.clock.Now()})
	wrongMethod, _ := a.Proof(http.MethodGet, tokenURL, dpop.ProofOptions{Now: e.clock.Now()})
	stale, _ := a.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{Now: e.clock.Now().Add(-5 * time.Minute)})
	for name, proof := range map[string]string{
		"key mismatch": forged, "htu of another server": wrongURL, "htu from a Host header": hostHeader,
		"htm GET": wrongMethod, "iat outside the window": stale, "not a JWT": "not-a-proof",
	} {
		t.Run(name, func(t *testing.T) {
			form := e.authForm(e.release, url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}})
			r := e.post("/token", form, "DPoP", proof, "Host", "writ.internal:8080", "X-Forwarded-Host", "evil.example")
			wantError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
		})
	}
	t.Run("two DPoP headers", func(t *testing.T) {
		p1, _ := a.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{Now: e.clock.Now()})
		p2, _ := a.Proof(http.MethodPost, tokenURL, dpop.ProofOptions{Now: e.clock.Now()})
		form := e.authForm(e.release, url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}})
		wantError(t, e.post("/token", form, "DPoP", p1, "DPoP", p2), http.StatusBadRequest, "invalid_dpop_proof")
	})
}

// TestTokenBoundToPollKey: the token is bound to the key of the poll that
// redeemed it; a resource server comparing cnf.jkt refuses any other key.
func TestTokenBoundToPollKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.submit(e.release, taskForm("contents:read"))
	if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
		t.Fatal(err)
	}
	a, b := dpopKey(t), dpopKey(t)
	r := e.poll(e.release, id, a)
	if r.Status != 200 || r.str("token_type") != "DPoP" {
		t.Fatalf("token: %s", r.Raw)
	}
	in := e.introspect(r.str("access_token"))
	jkt := in.Body["cnf"].(map[string]any)["jkt"]
	if jkt != a.JKT() || jkt == b.JKT() {
		t.Fatalf("cnf.jkt %v; want the polling key %s", jkt, a.JKT())
	}
	// A resource server's check: the proof's key must be the bound key.
	v := &dpop.Verifier{Replay: dpop.NewReplayCache(0), Now: e.clock.Now}
	proof, _ := b.Proof(http.MethodGet, "https://git.acme.example/x", dpop.ProofOptions{AccessToken: r.str("access_token"), Now: e.clock.Now()})
	p, err := v.Verify([]string{proof}, http.MethodGet, "https://git.acme.example/x", r.str("access_token"))
	if err != nil || p.JKT == jkt {
		t.Fatalf("a proof by another key: %v, jkt %s", err, p.JKT)
	}
}

func TestBearerWhenNoProofAndDPoPRequiredSwitch(t *testing.T) {
	t.Run("optional", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		id := e.submit(e.release, taskForm("contents:read"))
		if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
			t.Fatal(err)
		}
		r := e.poll(e.release, id, nil)
		if r.Status != 200 || r.str("token_type") != "Bearer" {
			t.Fatalf("token without proof: %s", r.Raw)
		}
		if e.get("/.well-known/openid-configuration").Body["dpop_bound_access_tokens_required"] == true {
			t.Error("metadata says DPoP is required")
		}
	})
	t.Run("required", func(t *testing.T) {
		e := newEnv(t, envOptions{requireDPoP: true})
		if e.get("/.well-known/openid-configuration").Body["dpop_bound_access_tokens_required"] != true {
			t.Error("metadata does not say DPoP is required")
		}
		id := e.submit(e.release, taskForm("contents:read"))
		// Refused at once, even while pending.
		wantError(t, e.poll(e.release, id, nil), http.StatusBadRequest, "invalid_dpop_proof")
		if _, err := e.svc.Approve(context.Background(), e.op, id); err != nil {
			t.Fatal(err)
		}
		wantError(t, e.poll(e.release, id, nil), http.StatusBadRequest, "invalid_dpop_proof")
		if r := e.poll(e.release, id, dpopKey(t)); r.Status != 200 || r.str("token_type") != "DPoP" {
			t.Fatalf("with a proof: %s", r.Raw)
		}
	})
}

func TestFollowOnRequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.client(e.release)
	p, err := c.Request(ctx, agent.TaskRequest{Intent: "open PR", Scopes: []string{"contents:write"}, Resource: gitURI})
	if err != nil {
		t.Fatal(err)
	}
	parentGrant, err := e.svc.Approve(ctx, e.op, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Poll(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := task.FollowOn(ctx, agent.TaskRequest{Intent: "read secrets to finish the PR", Scopes: []string{"secrets:read"}, Resource: gitURI})
	if err != nil {
		t.Fatal(err)
	}
	req, err := e.svc.Request(ctx, fp.ID)
	if err != nil || req.ParentID != p.ID {
		t.Fatalf("follow-on request parent %q, want %q (%v)", req.ParentID, p.ID, err)
	}
	if _, err := e.svc.Approve(ctx, e.op, fp.ID); err != nil {
		t.Fatal(err)
	}
	child, err := c.Poll(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := e.svc.VerifyAccessToken(child.AccessToken)
	if claims.Writ.Parent != p.ID {
		t.Errorf("child token writ.parent = %q, want %q", claims.Writ.Parent, p.ID)
	}
	// Revoking the parent revokes the follow-on.
	if _, err := e.svc.Revoke(ctx, e.op, parentGrant.ID, "compromised"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{task.AccessToken, child.AccessToken} {
		if in := e.introspect(tok); in.Body["active"] != false {
			t.Errorf("after revoking the parent: %s", in.Raw)
		}
	}
	// A parent that is not this agent's is refused.
	form := taskForm("contents:read")
	form.Set("parent_auth_req_id", p.ID)
	wantError(t, e.post("/bc-authorize", e.authForm(e.triage, form)), http.StatusBadRequest, "invalid_request")
}

func TestLoginHint(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name   string
		mutate func(url.Values)
		raw    string // appended to the encoded form
		status int
		code   string
	}{
		{"missing", func(f url.Values) { f.Del("login_hint") }, "", 400, "invalid_request"},
		{"duplicate", nil, "&login_hint=oncall", 400, "invalid_request"},
		{"with id_token_hint", func(f url.Values) { f.Set("id_token_hint", "x.y.z") }, "", 400, "invalid_request"},
		{"login_hint_token only", func(f url.Values) { f.Del("login_hint"); f.Set("login_hint_token", "x") }, "", 400, "invalid_request"},
		{"unknown", func(f url.Values) { f.Set("login_hint", "nobody") }, "", 400, "unknown_user_id"},
		{"another queue", func(f url.Values) { f.Set("login_hint", "platform-leads") }, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.authForm(e.release, taskForm("contents:read"))
			if tc.mutate != nil {
				tc.mutate(f)
			}
			req := mustRequest(t, http.MethodPost, e.url+"/bc-authorize")
			req.Body, req.ContentLength = bodyOf(f.Encode() + tc.raw)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := e.do(req)
			if tc.status == 200 {
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.Raw)
				}
				return
			}
			wantError(t, r, tc.status, tc.code)
		})
	}
}

func TestRefusedAtOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name   string
		key    func() *agent.Key
		mutate func(url.Values)
		status int
		code   string
	}{
		{"scope beyond the ceiling", func() *agent.Key { return e.triage }, func(f url.Values) { f.Set("scope", "contents:write") }, 400, "invalid_scope"},
		{"unknown scope", nil, func(f url.Values) { f.Set("scope", "admin") }, 400, "invalid_scope"},
		{"no scope", nil, func(f url.Values) { f.Del("scope") }, 400, "invalid_scope"},
		{"resource beyond the ceiling", nil, func(f url.Values) { f.Set("resource", billingURI) }, 400, "invalid_target"},
		{"unknown resource", nil, func(f url.Values) { f.Set("resource", "https://elsewhere.example") }, 400, "invalid_target"},
		{"TTL beyond the agent's maximum", func() *agent.Key { return e.triage }, func(f url.Values) { f.Set("requested_ttl", "3600") }, 400, "invalid_request"},
		{"TTL not a number", nil, func(f url.Values) { f.Set("requested_ttl", "1h") }, 400, "invalid_request"},
		{"negative expiry", nil, func(f url.Values) { f.Set("requested_expiry", "-5") }, 400, "invalid_request"},
		{"no intent", nil, func(f url.Values) { f.Del("binding_message") }, 400, "invalid_binding_message"},
		{"ping mode", nil, func(f url.Values) { f.Set("client_notification_token", "abc") }, 400, "invalid_request"},
		{"request object", nil, func(f url.Values) { f.Set("request", "a.b.c") }, 400, "invalid_request"},
		{"two resources", nil, func(f url.Values) { f.Add("resource", gitURI) }, 400, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := e.release
			if tc.key != nil {
				k = tc.key()
			}
			f := taskForm("contents:read")
			tc.mutate(f)
			wantError(t, e.post("/bc-authorize", e.authForm(k, f)), tc.status, tc.code)
		})
	}
	pending, _ := e.svc.Pending(context.Background())
	if len(pending) != 0 {
		t.Errorf("%d refused requests reached the queue", len(pending))
	}
	// requested_expiry may be sent as a string (it is one in a form).
	f := taskForm("contents:read")
	f.Set("requested_expiry", "120")
	if r := e.post("/bc-authorize", e.authForm(e.release, f)); r.Status != 200 || r.Body["expires_in"] != float64(120) {
		t.Errorf("requested_expiry 120: %s", r.Raw)
	}
	// An agent with one resource may leave resource out.
	f = taskForm("contents:read")
	f.Del("resource")
	if r := e.post("/bc-authorize", e.authForm(e.triage, f)); r.Status != 200 {
		t.Errorf("default resource: %s", r.Raw)
	}
}

func TestAuthorizationDetailsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	typ := `"type":"` + broker.TaskDetailType + `"`
	for name, details := range map[string]string{
		"unknown type":           `[{"type":"payment_initiation","actions":["contents:read"]}]`,
		"type differs in case":   `[{"type":"` + strings.ToUpper(broker.TaskDetailType) + `","actions":["contents:read"]}]`,
		"no type":                `[{"actions":["contents:read"]}]`,
		"unknown field":          `[{` + typ + `,"actions":["contents:read"],"amount":"5"}]`,
		"field name case":        `[{` + typ + `,"Actions":["contents:read"]}]`,
		"wrong field type":       `[{` + typ + `,"actions":"contents:read"}]`,
		"number in list":         `[{` + typ + `,"actions":[1]}]`,
		"duplicate member":       `[{` + typ + `,"actions":["contents:read"],"actions":["contents:write"]}]`,
		"empty list":             `[{` + typ + `,"actions":["contents:read"],"locations":[]}]`,
		"not an array":           `{` + typ + `}`,
		"not JSON":               `[{`,
		"trailing data":          `[{` + typ + `,"actions":["contents:read"]}] []`,
		"action beyond ceiling":  `[{` + typ + `,"actions":["contents:write"]}]`,
		"location elsewhere":     `[{` + typ + `,"actions":["contents:read"],"locations":["https://evil.example/x"]}]`,
		"no actions":             `[{` + typ + `,"locations":["` + gitURI + `/a"]}]`,
		"null in place of value": `[{` + typ + `,"actions":null}]`,
	} {
		t.Run(name, func(t *testing.T) {
			f := taskForm("contents:read")
			f.Set("authorization_details", details)
			wantError(t, e.post("/bc-authorize", e.authForm(e.triage, f)), 400, "invalid_authorization_details")
		})
	}
	f := taskForm("contents:read")
	f.Set("authorization_details", `[{`+typ+`,"actions":["contents:read"],"locations":["`+gitURI+`/acme/web"],"intent":"triage"}]`)
	if r := e.post("/bc-authorize", e.authForm(e.triage, f)); r.Status != 200 {
		t.Fatalf("valid details: %s", r.Raw)
	}
}

func TestAgentTextStoredAsGiven(t *testing.T) {
	e := newEnv(t, envOptions{})
	intent := "fix \x1b[31mCVE\x1b[0m \u202e now\ttab"
	f := taskForm("contents:read")
	f.Set("binding_message", intent)
	id := e.submit(e.release, f)
	req, err := e.svc.Request(context.Background(), id)
	if err != nil || req.Intent != intent {
		t.Fatalf("stored intent %q, want %q exactly (%v)", req.Intent, intent, err)
	}
}

func TestThrottledSubmissions(t *testing.T) {
	e := newEnv(t, envOptions{broker: func(o *broker.Options) { o.SubmitRate, o.SubmitBurst = 0.001, 2 }})
	for i := 0; i < 2; i++ {
		e.submit(e.release, taskForm("contents:read"))
	}
	r := e.post("/bc-authorize", e.authForm(e.release, taskForm("contents:read")))
	wantError(t, r, http.StatusTooManyRequests, "slow_down")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The operator can see it.
	for _, a := range e.svc.Agents() {
		if a.Agent.ID == "release-bot" && a.State.Throttled == 0 {
			t.Error("throttled submission not counted for the operator")
		}
	}
	m := e.get("/metrics")
	if !strings.Contains(m.Raw, "writ_requests_throttled_total 1") {
		t.Errorf("metrics lack the throttle count")
	}
}
