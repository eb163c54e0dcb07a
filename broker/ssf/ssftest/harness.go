// Package ssftest runs a real writ issuer with its SSF transmitter on
// loopback for tests of the revocation feed and of resource servers: a
// broker.Service over a temporary store, the transmitter, and the JWKS,
// served by an httptest server on 127.0.0.1 that stops when the test ends.
package ssftest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/store"
	"github.com/writhq/writ/store/storetest"
	"github.com/writhq/writ/wire/ssfwire"
)

// Resource is the audience of the harness's resource server.
const Resource = "https://api.example"

// Agents the configuration registers.
const (
	Agent      = "release-bot"
	OtherAgent = "docs-bot"
)

// Operator approves and revokes in tests.
var Operator = broker.Operator{Issuer: "https://idp.example", Subject: "priya", Email: "priya@example.com"}

// Config is the broker configuration of the harness.
func Config() *broker.Config {
	scopes := []broker.Scope{
		{Name: "contents:read", Description: "read", Risk: broker.RiskLow},
		{Name: "contents:write", Description: "push", Risk: broker.RiskHigh},
		{Name: "pulls:write", Description: "open PRs", Risk: broker.RiskMedium},
	}
	ceiling := []broker.CeilingEntry{{Resource: Resource, Scopes: []string{"contents:read", "contents:write", "pulls:write"}}}
	return &broker.Config{
		Limits:    broker.Limits{DefaultTTL: 15 * time.Minute, MaxTTL: time.Hour, ReviewDeadline: 10 * time.Minute},
		Resources: []broker.Resource{{URI: Resource, Scopes: scopes}},
		Agents:    []broker.Agent{{ID: Agent, Ceiling: ceiling}, {ID: OtherAgent, Ceiling: ceiling}},
	}
}

// Options tune a Harness.
type Options struct {
	// Transmitter options; Authenticate defaults to BearerReceiver and
	// CheckEndpoint to allowing loopback http.
	Transmitter ssf.Options
	// Now is the broker's clock; time.Now when nil.
	Now func() time.Time
	// NoRun leaves the transmitter's Run to the test.
	NoRun bool
}

// Harness is a running issuer and transmitter.
type Harness struct {
	TB          testing.TB
	Ctx         context.Context
	Store       *store.Store
	Svc         *broker.Service
	Transmitter *ssf.Transmitter
	Server      *httptest.Server
	// URL is the issuer, http://127.0.0.1:port.
	URL string
	// JWKSFetches counts GET /jwks.
	JWKSFetches atomic.Int64
}

// New starts a harness that stops when the test ends.
func New(tb testing.TB, o Options) *Harness {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	h := &Harness{TB: tb, Ctx: context.Background(), Store: storetest.MustOpen(tb)}
	h.URL = "http://" + ln.Addr().String()
	h.Svc, err = broker.New(h.Ctx, Config(), h.Store, broker.Options{
		Issuer: h.URL, Now: o.Now, SubmitRate: 1e6, SubmitBurst: 1 << 20, MaxPendingPerAgent: 1 << 20,
	})
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	topts := o.Transmitter
	if topts.Authenticate == nil {
		topts.Authenticate = BearerReceiver
	}
	if topts.CheckEndpoint == nil {
		topts.CheckEndpoint = AllowLoopback
		// Test receivers listen on loopback, which push may not reach
		// unless allowed, as a receiver on a private network would be.
		topts.Egress.Allow = append(topts.Egress.Allow, LoopbackEgress.Allow...)
	}
	if topts.Logger == nil {
		topts.Logger = Logger(tb)
	}
	h.Transmitter, err = ssf.New(h.Ctx, h.Svc, topts)
	if err != nil {
		tb.Fatalf("new transmitter: %v", err)
	}
	h.Server = httptest.NewUnstartedServer(h.Handler(h.Transmitter))
	h.Server.Listener.Close()
	h.Server.Listener = ln
	h.Server.Start()
	tb.Cleanup(h.Server.Close)
	if !o.NoRun {
		h.RunTransmitter(h.Transmitter)
	}
	return h
}

// Handler serves t and the JWKS, as the broker's HTTP API will.
func (h *Harness) Handler(t *ssf.Transmitter) http.Handler {
	mux := http.NewServeMux()
	t.Mount(mux)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		h.JWKSFetches.Add(1)
		b, err := json.Marshal(h.Svc.JWKS())
		if err != nil {
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	})
	return mux
}

// RunTransmitter runs t until the test ends, and waits for it to stop.
func (h *Harness) RunTransmitter(t *ssf.Transmitter) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- t.Run(ctx) }()
	h.TB.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.TB.Errorf("transmitter Run: %v", err)
		}
	})
}

// Logger returns a logger for tests: silent unless the tests run with -v.
// (It does not write through tb, which panics once the test has ended and
// goroutines stopping after it may still log.)
func Logger(tb testing.TB) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// BearerReceiver is the tests' receiver authentication: the bearer token
// is the receiver id. Real deployments authenticate receivers properly.
func BearerReceiver(r *http.Request) (string, error) {
	v := r.Header.Get("Authorization")
	id, ok := strings.CutPrefix(v, "Bearer ")
	if !ok || id == "" || strings.ContainsAny(id, " \t") {
		return "", errors.New("no bearer credentials")
	}
	if id == "forbidden" {
		return "", broker.Errorf(broker.EFORBIDDEN, "receiver %s may not use the feed", id)
	}
	return id, nil
}

// LoopbackEgress lets push reach test receivers on loopback.
var LoopbackEgress = ssf.Egress{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// AllowLoopback allows push endpoints on loopback over http, for tests.
func AllowLoopback(u *url.URL) error {
	if u.Scheme == "https" {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("only https, or http on loopback in tests")
}

// Mint submits, approves and redeems a request of agent for scopes at
// Resource, and returns the token. jkt binds it to a DPoP key ("" for a
// bearer token).
func (h *Harness) Mint(agent, jkt string, scopes ...string) *broker.IssuedToken {
	h.TB.Helper()
	return h.MintWith(agent, jkt, broker.SubmitInput{Scopes: scopes})
}

// MintWith is Mint with more of the request spelled out; LoginHint,
// Intent, Resource and TTL get defaults.
func (h *Harness) MintWith(agent, jkt string, in broker.SubmitInput) *broker.IssuedToken {
	h.TB.Helper()
	if in.LoginHint == "" {
		in.LoginHint = "oncall"
	}
	if in.Intent == "" {
		in.Intent = "open PR fixing CVE-2026-1234"
	}
	if in.Resource == "" {
		in.Resource = Resource
	}
	if in.TTL == 0 {
		in.TTL = 20 * time.Minute
	}
	req, err := h.Svc.Submit(h.Ctx, agent, in)
	if err != nil {
		h.TB.Fatalf("submit: %v", err)
	}
	if _, err := h.Svc.Approve(h.Ctx, Operator, req.ID); err != nil {
		h.TB.Fatalf("approve: %v", err)
	}
	tok, err := h.Svc.Redeem(h.Ctx, agent, req.ID, jkt)
	if err != nil {
		h.TB.Fatalf("redeem: %v", err)
	}
	return tok
}

// Revoke revokes a grant as the test operator.
func (h *Harness) Revoke(grantID, reason string) {
	h.TB.Helper()
	if _, err := h.Svc.Revoke(h.Ctx, Operator, grantID, reason); err != nil {
		h.TB.Fatalf("revoke %s: %v", grantID, err)
	}
}

// Client is an HTTP client for one receiver: it sends the receiver's
// bearer credentials and closes its idle connections when the test ends.
func (h *Harness) Client(receiver string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	h.TB.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: authTransport{receiver: receiver, next: tr}, Timeout: time.Minute}
}

type authTransport struct {
	receiver string
	next     http.RoundTripper
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.receiver != "" {
		r.Header.Set("Authorization", "Bearer "+a.receiver)
	}
	return a.next.RoundTrip(r)
}

// CheckLeaks fails the test if, once every later cleanup has run, more
// goroutines are left than there were when it was called. Call it first,
// so its cleanup runs last.
func CheckLeaks(tb testing.TB) {
	tb.Helper()
	before := runtime.NumGoroutine()
	tb.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Errorf("%d goroutines leaked (%d before, %d after):\n%s", n-before, before, n, buf)
		}
	})
}

// KeyFunc finds keys in the issuer's JWKS, for verifying SETs in tests.
func (h *Harness) KeyFunc() ssfwire.KeyFunc {
	return func(kid string) (*jose.JSONWebKey, error) {
		for _, k := range h.Svc.JWKS().Keys {
			if k.KeyID == kid {
				return &k, nil
			}
		}
		return nil, errors.New("no such key")
	}
}
