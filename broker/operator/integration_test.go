package operator

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The integration tests sign in at a real, independent OpenID Provider:
// panva/oidc-provider, started by .ci/oidc/start.sh on loopback. A headless
// "person" with a cookie jar follows its pages and posts its forms.

const integrationEnv = "WRIT_OIDC_PROVIDER_URL"

func integrationIssuer(t *testing.T) string {
	t.Helper()
	issuer := os.Getenv(integrationEnv)
	if issuer == "" {
		t.Skipf("%s is not set: run `eval \"$(.ci/oidc/start.sh)\"` (needs node ≥ 20 and npm) to start oidc-provider on loopback", integrationEnv)
	}
	return issuer
}

func integrationClient(t *testing.T, login string) *Client {
	t.Helper()
	return newTestClient(t, Config{
		Issuer:   integrationIssuer(t),
		ClientID: "writ-console",
		Scopes:   []string{"openid", "profile", "email", "groups", "offline_access"},
		Login:    login,
	})
}

// person is someone at a browser: cookies, and forms filled in as asked.
type person struct {
	t  *testing.T
	hc *http.Client
}

func newPerson(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

type htmlForm struct {
	action string
	fields url.Values
}

var (
	formRE  = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
	attrRE  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// forms finds the page's forms and their prefilled fields.
func forms(page string) []htmlForm {
	var out []htmlForm
	for _, m := range formRE.FindAllStringSubmatch(page, -1) {
		f := htmlForm{fields: url.Values{}}
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			if a[1] == "action" {
				f.action = html.UnescapeString(a[2])
			}
		}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if name, ok := attrs["name"]; ok {
				if v, ok := attrs["value"]; ok {
					f.fields.Set(name, v)
				}
			}
		}
		out = append(out, f)
	}
	return out
}

func (p *person) get(u string) (*http.Response, string) {
	p.t.Helper()
	resp, err := p.hc.Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(resp)
}

// submit posts the page's form whose action ends with suffix ("" for the
// first), with extra fields added.
func (p *person) submit(resp *http.Response, page, suffix string, extra url.Values) (*http.Response, string) {
	p.t.Helper()
	for _, f := range forms(page) {
		if suffix != "" && !strings.HasSuffix(f.action, suffix) {
			continue
		}
		for k, v := range extra {
			f.fields[k] = v
		}
		target, err := resp.Request.URL.Parse(f.action)
		if err != nil {
			p.t.Fatal(err)
		}
		next, err := p.hc.PostForm(target.String(), f.fields)
		if err != nil {
			p.t.Fatalf("POST %s: %v", target, err)
		}
		return next, readBody(next)
	}
	p.t.Fatalf("no form ending %q on %s:\n%s", suffix, resp.Request.URL, page)
	return nil, ""
}

func readBody(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b)
}

const ciPassword = "correct horse battery staple"

// approveDevice enters the code from verification_uri_complete, confirms it,
// signs in as login and consents; with deny it aborts at the confirmation.
func (p *person) approveDevice(da *DeviceAuth, login string, deny bool) {
	p.t.Helper()
	resp, page := p.get(da.VerificationURIComplete) // an auto-submitting form with the code
	resp, page = p.submit(resp, page, "", nil)      // the confirmation page
	if deny {
		resp, page = p.submit(resp, page, "", url.Values{"abort": {"yes"}})
		if resp.StatusCode >= 500 {
			p.t.Fatalf("abort: %d %s", resp.StatusCode, page)
		}
		return
	}
	resp, page = p.submit(resp, page, "", nil) // confirmed: on to sign-in
	p.signIn(resp, page, login)
}

// signIn answers the login and consent pages.
func (p *person) signIn(resp *http.Response, page, login string) (*http.Response, string) {
	p.t.Helper()
	resp, page = p.submit(resp, page, "/login", url.Values{"login": {login}, "password": {ciPassword}})
	if strings.Contains(resp.Request.URL.Path, "/interaction/") && strings.Contains(page, "/confirm") {
		resp, page = p.submit(resp, page, "/confirm", nil)
	}
	return resp, page
}

func TestIntegrationDeviceFlow(t *testing.T) {
	c := integrationClient(t, LoginDevice)
	t.Parallel()
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newPerson(t).approveDevice(da, "priya", false)
	s, err := c.WaitDevice(t.Context(), da)
	if err != nil {
		t.Fatal(err)
	}
	op := s.Operator
	if op.Issuer != c.Issuer() || op.Subject != "priya" || op.Email != "priya@ci.writ.test" || op.Name != "Priya Patel" || op.AuthTime.IsZero() {
		t.Errorf("operator = %+v", op)
	}
	if !s.Refreshable() {
		t.Log("the provider gave no refresh token: refresh not exercised")
		return
	}
	ns, err := c.Refresh(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if ns.Operator.ID() != op.ID() || ns.Expiry.Before(s.Expiry) {
		t.Errorf("refreshed %s until %v, was %s until %v", ns.Operator.ID(), ns.Expiry, op.ID(), s.Expiry)
	}
}

func TestIntegrationDeviceFlowNotApprover(t *testing.T) {
	c := integrationClient(t, LoginDevice)
	t.Parallel()
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newPerson(t).approveDevice(da, "sam", false)
	_, err = c.WaitDevice(t.Context(), da)
	const want = `not an approver: claim "groups" has ["security"], needs "writ-approvers"`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestIntegrationDeviceFlowDenied(t *testing.T) {
	c := integrationClient(t, LoginDevice)
	t.Parallel()
	da, err := c.StartDevice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newPerson(t).approveDevice(da, "priya", true)
	if _, err := c.WaitDevice(t.Context(), da); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
}

func TestIntegrationBrowserFlow(t *testing.T) {
	c := integrationClient(t, LoginBrowser)
	t.Parallel()
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := newPerson(t)
	resp, page := p.get(ba.URL)
	resp, page = p.signIn(resp, page, "priya")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "return to your terminal") {
		t.Errorf("loopback page %d: %s", resp.StatusCode, page)
	}
	s, err := c.WaitBrowser(t.Context(), ba)
	if err != nil {
		t.Fatal(err)
	}
	if s.Operator.Subject != "priya" || s.Operator.Email != "priya@ci.writ.test" {
		t.Errorf("operator = %+v", s.Operator)
	}
}

func TestIntegrationBrowserFlowDenied(t *testing.T) {
	c := integrationClient(t, LoginBrowser)
	t.Parallel()
	ba, err := c.StartBrowser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := newPerson(t)
	resp, page := p.get(ba.URL)
	p.submit(resp, page, "/abort", nil)
	if _, err := c.WaitBrowser(t.Context(), ba); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
}
