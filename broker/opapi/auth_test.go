package opapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// raw is a hand-driven operator API caller: its own DPoP key, and every
// header under the test's control.
type raw struct {
	t      *testing.T
	h      *opapitest.Harness
	signer *dpop.Signer
}

func newRaw(t *testing.T, h *opapitest.Harness) *raw {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := dpop.NewSigner(priv, jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return &raw{t: t, h: h, signer: s}
}

func (r *raw) proof(method, path, token string) string {
	p, err := r.signer.Proof(method, r.h.URL+path, dpop.ProofOptions{AccessToken: token})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// exchange trades an ID token for an operator token, returning the answer.
func (r *raw) exchange(idToken string) (*http.Response, map[string]any) {
	r.t.Helper()
	form := url.Values{"grant_type": {opapi.GrantTypeTokenExchange}, "subject_token": {idToken},
		"subject_token_type": {opapi.TokenTypeIDToken}}
	req, _ := http.NewRequest(http.MethodPost, r.h.URL+opapi.PathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", r.proof(http.MethodPost, opapi.PathToken, ""))
	return r.do(req)
}

func (r *raw) do(req *http.Request) (*http.Response, map[string]any) {
	r.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func (r *raw) token(idToken string) string {
	r.t.Helper()
	resp, body := r.exchange(idToken)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	return body["access_token"].(string)
}

// call makes an authenticated call with the given Authorization and DPoP values.
func (r *raw) call(method, path, authz, proof string) (*http.Response, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.h.URL+path, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return r.do(req)
}

func TestAuthentication(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana := h.SignIn("dana", "")
	nico := h.SignIn("nico", "dev") // the client lets him through; the server must not
	r := newRaw(t, h)
	tok := r.token(dana.IDToken())

	// A well-formed call works, and names the operator.
	resp, body := r.call("GET", opapi.PathSession, "DPoP "+tok, r.proof("GET", opapi.PathSession, tok))
	if resp.StatusCode != 200 || body["operator"].(map[string]any)["sub"] != "u-dana" {
		t.Fatalf("good call: %d %v", resp.StatusCode, body)
	}

	replayed := r.proof("GET", opapi.PathSession, tok)
	if resp, _ := r.call("GET", opapi.PathSession, "DPoP "+tok, replayed); resp.StatusCode != 200 {
		t.Fatalf("first use of a proof: %d", resp.StatusCode)
	}
	other := newRaw(t, h)
	// An operator token of the wrong audience, signed by writ itself.
	wrongAud, err := h.Svc.Sign(opapi.TokenType, map[string]any{"iss": h.URL, "aud": h.URL + "/ssf", "sub": "x|y",
		"exp": time.Now().Add(time.Minute).Unix(), "cnf": map[string]string{"jkt": r.signer.JKT()}, "grp": "writ-approvers",
		"op": map[string]string{"iss": h.IDP.Issuer(), "sub": "y"}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, authz, proof string
		status             int
		code               string
	}{
		{"missing credentials", "", "", 401, ""},
		{"bearer scheme", "Bearer " + tok, r.proof("GET", opapi.PathSession, tok), 401, "invalid_token"},
		{"ID token as the credential", "DPoP " + dana.IDToken(), r.proof("GET", opapi.PathSession, dana.IDToken()), 401, "invalid_token"},
		{"no proof", "DPoP " + tok, "", 401, "invalid_dpop_proof"},
		{"replayed proof", "DPoP " + tok, replayed, 401, "invalid_dpop_proof"},
		{"proof by another key", "DPoP " + tok, other.proof("GET", opapi.PathSession, tok), 401, "invalid_token"},
		{"proof for another URL", "DPoP " + tok, r.proof("GET", "/v1/grants", tok), 401, "invalid_dpop_proof"},
		{"wrong audience", "DPoP " + wrongAud, r.proof("GET", opapi.PathSession, wrongAud), 401, "invalid_token"},
		{"garbage", "DPoP abc.def.ghi", r.proof("GET", opapi.PathSession, "abc.def.ghi"), 401, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := r.call("GET", opapi.PathSession, tc.authz, tc.proof)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `algs="`) {
				t.Errorf("WWW-Authenticate %q", ch)
			}
			if tc.code != "" && (body["error"] != tc.code || !strings.Contains(ch, `error="`+tc.code+`"`)) {
				t.Errorf("error %v, challenge %q; want %s", body["error"], ch, tc.code)
			}
			if tc.code == "" && strings.Contains(ch, "error=") {
				t.Errorf("a request without credentials gets no error code (RFC 6750 §3.1): %q", ch)
			}
		})
	}

	t.Run("non-approver", func(t *testing.T) {
		resp, body := r.exchange(nico.IDToken())
		if resp.StatusCode != 403 || body["error"] != "access_denied" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("not an ID token", func(t *testing.T) {
		resp, body := r.exchange(tok)
		if resp.StatusCode != 400 || body["error"] != "invalid_request" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("exchange without proof", func(t *testing.T) {
		form := url.Values{"grant_type": {opapi.GrantTypeTokenExchange}, "subject_token": {dana.IDToken()},
			"subject_token_type": {opapi.TokenTypeIDToken}}
		req, _ := http.NewRequest(http.MethodPost, h.URL+opapi.PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, body := r.do(req)
		if resp.StatusCode != 400 || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("expired operator token", func(t *testing.T) {
		h.Clock.Advance(opapi.DefaultTokenLifetime + time.Second)
		defer h.Clock.Advance(-opapi.DefaultTokenLifetime - time.Second)
		resp, body := r.call("GET", opapi.PathSession, "DPoP "+tok, r.proof("GET", opapi.PathSession, tok))
		if resp.StatusCode != 401 || body["error"] != "invalid_token" || !strings.Contains(body["error_description"].(string), "expired") {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
	t.Run("expired ID token", func(t *testing.T) {
		h.Clock.Advance(2 * time.Hour) // the provider's ID tokens live an hour
		defer h.Clock.Advance(-2 * time.Hour)
		resp, body := r.exchange(dana.IDToken())
		if resp.StatusCode != 400 || !strings.Contains(body["error_description"].(string), "expired") {
			t.Fatalf("%d %v", resp.StatusCode, body)
		}
	})
}

func TestWrongAudienceIDToken(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{VerifierClientID: "some-other-client"})
	r := newRaw(t, h)
	resp, body := r.exchange(h.SignIn("dana", "").IDToken())
	if resp.StatusCode != 400 || body["error"] != "invalid_request" {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}

func TestFreshAuthForGraveActions(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{FreshAuth: 10 * time.Minute})
	c := h.Client("dana", nil)
	ctx := context.Background()
	// Fresh: the grave actions work.
	if _, err := c.RevokeAll(ctx, broker.Operator{}, "drill", true); err != nil {
		t.Fatalf("fresh revoke-all: %v", err)
	}
	if err := c.Unfreeze(ctx, broker.Operator{}, "drill over"); err != nil {
		t.Fatalf("fresh unfreeze: %v", err)
	}
	if g, err := c.Approve(ctx, broker.Operator{}, h.Submit("read the deploy secrets", "secrets:read").ID); err != nil || g == nil {
		t.Fatalf("fresh approval of a critical request: %v", err)
	}
	// The sign-in grows old; the ID token is still good for the exchange.
	h.Clock.Advance(11 * time.Minute)
	crit := h.Submit("read the deploy secrets again", "secrets:read")
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"revoke-all", func() error { _, err := c.RevokeAll(ctx, broker.Operator{}, "again", true); return err }},
		{"unfreeze", func() error { return c.Unfreeze(ctx, broker.Operator{}, "drill over") }},
		{"critical approval", func() error { _, err := c.Approve(ctx, broker.Operator{}, crit.ID); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("a stale sign-in did a grave action")
			}
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != 401 || !client.NeedsFreshSignIn(err) ||
				!strings.Contains(ae.Body.Description, "a sign-in at most 10m old; yours was 11m") ||
				!strings.Contains(ae.Challenge, `error="insufficient_user_authentication"`) || !strings.Contains(ae.Challenge, `max_age="600"`) {
				t.Fatalf("err %v (%+v)", err, ae)
			}
		})
	}
	if st := h.Svc.IssuerState(); st.Frozen {
		t.Error("a refused revoke-all froze issuance")
	}
	if _, err := c.Approve(ctx, broker.Operator{}, h.Submit("read the repo", "contents:read").ID); err != nil {
		t.Fatalf("stale approval of a low-risk request: %v", err)
	}
}

// The approver group is checked again on every call: a token minted while
// the operator's group was the approver group stops working when the
// server requires another.
func TestApproverGroupRecheckedOnEveryCall(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	r := newRaw(t, h)
	tok := r.token(h.SignIn("dana", "").IDToken())
	h.Reconfigure(func(o *opapitest.Options) { o.ApproverGroup = "release-managers" })
	h.Restart()
	resp, body := r.call("GET", opapi.PathSession, "DPoP "+tok, r.proof("GET", opapi.PathSession, tok))
	if resp.StatusCode != 401 || body["error"] != "invalid_token" || !strings.Contains(body["error_description"].(string), "release-managers") {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}
