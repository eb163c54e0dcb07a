package devidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
)

func start(t *testing.T, opts devidp.Options) *devidp.Provider {
	t.Helper()
	p, err := devidp.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestDiscoveryAdvertisesBothFlows(t *testing.T) {
	t.Parallel()
	p := start(t, devidp.Options{})
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") || !p.Dev() {
		t.Fatalf("issuer %s dev %v", p.Issuer(), p.Dev())
	}
	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer string   `json:"issuer"`
		Device string   `json:"device_authorization_endpoint"`
		Auth   string   `json:"authorization_endpoint"`
		JWKS   string   `json:"jwks_uri"`
		Grants []string `json:"grant_types_supported"`
		PKCE   []string `json:"code_challenge_methods_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != p.Issuer() || d.Device == "" || d.Auth == "" || d.JWKS == "" || !contains(d.PKCE, "S256") ||
		!contains(d.Grants, "urn:ietf:params:oauth:grant-type:device_code") || !contains(d.Grants, "refresh_token") {
		t.Errorf("discovery: %+v", d)
	}
}

// TestDeviceFormPost plays a headless person at the verification page.
func TestDeviceFormPost(t *testing.T) {
	t.Parallel()
	p := start(t, devidp.Options{})
	c, err := operator.New(operator.Config{Issuer: p.Issuer(), ClientID: devidp.ClientID, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	page, err := http.Get(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(body), "DEV") || !strings.Contains(string(body), da.UserCode) {
		t.Errorf("verification page lacks DEV or the code:\n%s", body)
	}
	// Typed in lower case without the dash, as people do.
	typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
	resp, err := http.PostForm(p.Issuer()+"/device", url.Values{"user_code": {typed}, "username": {devidp.Dana}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: status %d", resp.StatusCode)
	}
	s, err := c.WaitDevice(t.Context(), da)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Operator.Dev || s.Operator.Name != "Dana Demo" {
		t.Errorf("operator %+v", s.Operator)
	}
	// The code is spent.
	if err := p.ApproveDevice(da.UserCode, devidp.Dana); err == nil {
		t.Error("a used code was approved again")
	}
}

func TestAutoApproveSignsInWithoutPages(t *testing.T) {
	t.Parallel()
	p := start(t, devidp.Options{AutoApprove: devidp.Dana})
	c, err := operator.New(operator.Config{Issuer: p.Issuer(), ClientID: devidp.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitDevice(t.Context(), da); err != nil {
		t.Fatal(err)
	}
}

func TestConfidentialClient(t *testing.T) {
	t.Parallel()
	p := start(t, devidp.Options{ClientSecret: "s3cret", AutoApprove: devidp.Dana})
	for _, login := range []string{operator.LoginDevice, operator.LoginBrowser} {
		c, err := operator.New(operator.Config{Issuer: p.Issuer(), ClientID: devidp.ClientID, ClientSecret: "s3cret", Login: login,
			OpenBrowser: func(u string) error { return errors.New("headless") }})
		if err != nil {
			t.Fatal(err)
		}
		if login == operator.LoginDevice {
			da, err := c.StartDevice(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitDevice(t.Context(), da); err != nil {
				t.Fatalf("device: %v", err)
			}
			continue
		}
		ba, err := c.StartBrowser(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ba.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, err := c.WaitBrowser(t.Context(), ba); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
}

func TestRefusesNonLoopbackAddress(t *testing.T) {
	t.Parallel()
	if _, err := devidp.Start(t.Context(), devidp.Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("listened beyond loopback")
	}
	if _, err := devidp.Start(t.Context(), devidp.Options{AutoApprove: "mallory"}); err == nil {
		t.Fatal("auto-approved an unknown user")
	}
}

func TestStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	p, err := devidp.Start(ctx, devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = p.Close() // waits for the server; a second stop is harmless
	if resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after its context ended")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
