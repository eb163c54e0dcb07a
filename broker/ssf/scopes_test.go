package ssf_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// TestRequiredScopes: every authenticated route tells the authenticator
// which OAuth scopes it accepts (CAEP Interoperability Profile: ssf.manage
// for management, ssf.read for reading), and the authenticator's
// invalid_token and insufficient_scope refusals are answered per RFC 6750.
func TestRequiredScopes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	refuse := ""
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{Authenticate: func(r *http.Request) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = ssf.RequiredScopes(r)
		switch refuse {
		case broker.ReasonInvalidToken:
			return "", broker.Errorf(broker.EUNAUTHORIZED, "expired").WithReason(refuse)
		case broker.ReasonInsufficientScope:
			return "", broker.Errorf(broker.EFORBIDDEN, "no scope").WithReason(refuse)
		}
		return "", broker.Errorf(broker.EUNAUTHORIZED, "no")
	}}})
	manage, read := []string{broker.ScopeSSFManage}, []string{broker.ScopeSSFRead}
	either := []string{broker.ScopeSSFRead, broker.ScopeSSFManage}
	for _, c := range []struct {
		method, path string
		want         []string
	}{
		{"POST", "/ssf/stream", manage}, {"GET", "/ssf/stream", either}, {"PATCH", "/ssf/stream", manage},
		{"PUT", "/ssf/stream", manage}, {"DELETE", "/ssf/stream", manage}, {"GET", "/ssf/status", either},
		{"POST", "/ssf/status", manage}, {"POST", "/ssf/verify", manage}, {"POST", "/ssf/poll/s1", read},
		{"POST", "/ssf/usage", read},
	} {
		req, err := http.NewRequest(c.method, h.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		got := seen
		mu.Unlock()
		if resp.StatusCode != http.StatusUnauthorized || !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %d, scopes %v, want 401 and %v", c.method, c.path, resp.StatusCode, got, c.want)
		}
	}
	for reason, status := range map[string]int{broker.ReasonInvalidToken: 401, broker.ReasonInsufficientScope: 403} {
		mu.Lock()
		refuse = reason
		mu.Unlock()
		req, _ := http.NewRequest("POST", h.URL+"/ssf/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != status || !strings.Contains(challenge, `error="`+reason+`"`) || !strings.Contains(challenge, `scope="ssf.manage"`) {
			t.Errorf("%s: %d %q", reason, resp.StatusCode, challenge)
		}
	}
}
