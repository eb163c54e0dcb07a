package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/httpapi"
	"github.com/writhq/writ/broker/ratelimit"
)

// FuzzClientAssertion: no assertion, however made, panics the server or
// authenticates a client it was not signed for; the fuzzer cannot sign.
func FuzzClientAssertion(f *testing.F) {
	e := newEnv(f, envOptions{api: unthrottled})
	valid := e.assertion(e.release, nil)
	for _, seed := range []struct{ typ, assertion, clientID string }{
		{httpapi.AssertionTypeJWTBearer, valid, ""},
		{httpapi.AssertionTypeJWTBearer, valid, "release-bot"},
		{httpapi.AssertionTypeSPIFFE, valid, ""},
		{httpapi.AssertionTypeJWTBearer, "a.b.c", ""},
		{httpapi.AssertionTypeJWTBearer, "eyJhbGciOiJub25lIn0.eyJpc3MiOiJyZWxlYXNlLWJvdCIsInN1YiI6InJlbGVhc2UtYm90In0.", ""},
		{"urn:x", "", ""},
		{httpapi.AssertionTypeJWTBearer, strings.Repeat("A", 9000) + "..", ""},
	} {
		f.Add(seed.typ, seed.assertion, seed.clientID)
	}
	used := false
	f.Fuzz(func(t *testing.T, typ, assertion, clientID string) {
		c, err := e.api.AuthenticateAssertion(context.Background(), typ, assertion, clientID, e.api.Issuer()+"/token")
		if err != nil {
			return
		}
		// Only the one validly signed assertion can pass, once.
		if assertion != valid || used || c.ID != "release-bot" {
			t.Fatalf("authenticated %q with assertion %q", c.ID, assertion)
		}
		used = true
	})
}

// FuzzIntrospectToken: any token at the introspection endpoint gets a
// 200 answer, and only the real token is active.
func FuzzIntrospectToken(f *testing.F) {
	e := newEnv(f, envOptions{api: unthrottled})
	real := e.token("contents:read")
	parts := strings.Split(real, ".")
	for _, seed := range []string{
		real, parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2], "x", "", "a.b.c", "..",
		strings.Repeat("e", 17<<10), parts[0] + "." + parts[1] + "." + parts[2] + "x",
		"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJqdGkiOiJ4Iiwic2lkIjoieSJ9.",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		e := e.with(t)
		form := e.authForm(e.rs, url.Values{"token": {token}})
		req := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		body := rec.Body.String()
		switch {
		case token == "" || !utf8.ValidString(token):
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("token %q: %d %s", token, rec.Code, body)
			}
		case rec.Code != http.StatusOK:
			t.Fatalf("%d %s", rec.Code, body)
		case token == real:
			if !strings.Contains(body, `"active":true`) {
				t.Fatalf("the real token is inactive: %s", body)
			}
		case body != "{\"active\":false}\n":
			t.Fatalf("token %q: %s", token, body)
		}
	})
}

// FuzzBackchannelRequest: any task request form from an authenticated
// agent is accepted or refused with a 4xx OAuth error, never a 5xx.
func FuzzBackchannelRequest(f *testing.F) {
	e := newEnv(f, envOptions{broker: func(o *broker.Options) { o.MaxPendingPerAgent = 1 << 20 }, api: unthrottled})
	typ := `"type":"` + broker.TaskDetailType + `"`
	for _, seed := range []string{
		taskForm("contents:read").Encode(),
		"scope=contents:read&login_hint=oncall&binding_message=x&authorization_details=" +
			url.QueryEscape(`[{`+typ+`,"actions":["contents:read"],"locations":["https://git.acme.example/a"]}]`),
		"scope=openid&login_hint=oncall&binding_message=x",
		"scope=contents:read&login_hint=oncall&binding_message=x&requested_ttl=99999999999999999999",
		"scope=contents:read&login_hint=oncall&binding_message=x&parent_auth_req_id=nope",
		"scope=contents:read&login_hint=oncall&binding_message=x&resource=https://git.acme.example/sub#frag",
		"login_hint=oncall&login_hint=oncall", "scope=%00&login_hint=%00&binding_message=%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := e.with(t)
		auth := e.authForm(e.release, nil).Encode()
		req := httptest.NewRequest(http.MethodPost, "/bc-authorize", strings.NewReader(auth+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), "auth_req_id") {
			t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body.String())
		}
	})
}

// with returns a copy of e reporting to t, for use inside a fuzz function
// (the *testing.F that made e may not be used there).
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// unthrottled lifts the per-client limits for fuzz targets, which
// authenticate one client many thousands of times under a frozen clock:
// the limits have tests of their own (hostile_test.go).
func unthrottled(o *httpapi.Options) {
	o.ClientAuth = ratelimit.Limit{PerSecond: -1}
	o.ReplayEntries = 1 << 23
}
