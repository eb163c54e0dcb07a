package ssf_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire/ssfwire"
)

func TestForbiddenAddr(t *testing.T) {
	cases := []struct{ addr, want string }{
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"}, // IPv4-mapped
		{"64:ff9b::7f00:1", "loopback"},  // NAT64 of 127.0.0.1
		{"169.254.169.254", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"100.100.100.200", "metadata"},
		{"169.254.10.1", "link-local"},
		{"fe80::1", "link-local"},
		{"10.0.0.5", "private"},
		{"172.16.3.4", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"100.64.0.1", "shared"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"93.184.216.34", ""},
		{"2606:4700::1111", ""},
		{"8.8.8.8", ""},
	}
	for _, tc := range cases {
		got := ssf.ForbiddenAddr(netip.MustParseAddr(tc.addr))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("ForbiddenAddr(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// The attack of issue 10, item 2: a receiver creates push streams into
// writ's own network. Each is refused at creation with a clear error.
func TestPushStreamToForbiddenAddressRefused(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{CheckEndpoint: ssf.Egress{}.CheckURL}})
	r := newReceiver(t, h, "rs-ssrf")
	for _, u := range []string{
		"https://169.254.169.254/latest/meta-data/",
		"https://127.0.0.1:8443/x",
		"https://[::1]:22/",
		"https://localhost:6379/",
		"https://LOCALHOST./",
		"https://admin.localhost/",
		"https://10.0.0.5/events",
		"https://192.168.0.1/",
		"https://[fe80::1]/",
		"https://[fd00:ec2::254]/",
		"https://224.0.0.1/",
		"https://0.0.0.0:443/",
		"https://[::ffff:127.0.0.1]/",
		"https://2130706433/",
		"https://0x7f.1/",
		"http://receiver.example/", // not https
	} {
		code, body := r.do("POST", "/ssf/stream", map[string]any{"delivery": map[string]string{"method": ssfwire.DeliveryPush, "endpoint_url": u}})
		if code != http.StatusBadRequest || !strings.Contains(string(body), "not allowed") {
			t.Errorf("push stream to %s: %d %s, want 400 not allowed", u, code, body)
		}
	}
}

func TestEgressCheckURLAllowList(t *testing.T) {
	e, err := ssf.ParseEgress([]string{"10.1.2.0/24", "fd12::7", "feed.corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	for u, ok := range map[string]bool{
		"https://10.1.2.3/push":          true,
		"https://10.1.3.3/push":          false,
		"https://[fd12::7]/":             true,
		"https://feed.corp.example/push": true,
		"https://FEED.corp.example./x":   true,
		"https://169.254.169.254/":       false,
		"https://public.example/":        true, // checked again at dial time
	} {
		pu, _ := url.Parse(u)
		if err := e.CheckURL(pu); (err == nil) != ok {
			t.Errorf("CheckURL(%s) = %v, want allowed=%v", u, err, ok)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "*.corp.example", "user@host"} {
		if _, err := ssf.ParseEgress([]string{bad}); err == nil {
			t.Errorf("ParseEgress(%q) accepted", bad)
		}
	}
}

// A name is checked on what it resolves to, when the push client dials:
// "localhost" passes no literal-address check, and still never connects.
func TestPushDialRefusesNameResolvingToLoopback(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	byName := "http://localhost:" + port + "/push"

	_, err := ssf.Egress{}.Client(5*time.Second).Post(byName, "application/secevent+jwt", strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("push to a name resolving to loopback: %v, want refused at dial", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
	// Allowed explicitly, by range or by name, it connects.
	for _, e := range []ssf.Egress{ssftest.LoopbackEgress, {AllowHosts: []string{"localhost"}}} {
		resp, err := e.Client(5*time.Second).Post(byName, "application/secevent+jwt", strings.NewReader("x"))
		if err != nil {
			t.Fatalf("allowed push: %v", err)
		}
		resp.Body.Close()
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("the receiver got %d requests, want 2", n)
	}
}

// A push stream whose endpoint passed the creation check (here a lax one)
// still cannot reach loopback: the transmitter's own dialer refuses.
func TestPushStreamNeverDialsLoopback(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{
		CheckEndpoint: func(*url.URL) error { return nil }, // as if a name had resolved elsewhere at creation
		MinBackoff:    5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	r := newReceiver(t, h, "rs-rebind")
	r.create(map[string]any{"delivery": map[string]string{"method": ssfwire.DeliveryPush,
		"endpoint_url": "http://localhost:" + port + "/push", "authorization_header": "Bearer receiver-chosen"}})
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "x")
	waitFor(t, func() bool { return h.Transmitter.Stats().PushFailures >= 2 })
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d pushes", n)
	}
}

// Push follows no redirect: a receiver cannot bounce writ elsewhere.
func TestPushFollowsNoRedirect(t *testing.T) {
	var inside atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inside.Add(1) }))
	defer target.Close()
	bounce := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusTemporaryRedirect)
	}))
	defer bounce.Close()
	resp, err := ssftest.LoopbackEgress.Client(5*time.Second).Post(bounce.URL, "application/secevent+jwt", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || inside.Load() != 0 {
		t.Fatalf("redirect: status %d, target hit %d times", resp.StatusCode, inside.Load())
	}
}
