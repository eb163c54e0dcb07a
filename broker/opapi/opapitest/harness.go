// Package opapitest runs a real operator API on loopback for tests: a
// broker over a temporary store, the development identity provider, and
// the operator API in front, plus helpers that sign people in (through the
// device flow, as a person would) and build clients.
package opapitest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/operator"
	"github.com/writhq/writ/broker/operator/devidp"
	"github.com/writhq/writ/store"
)

// Resource and agent of the harness's configuration.
const (
	GitURI = "https://git.acme.example"
	Agent  = "release-bot"
)

// Users at the harness's provider: three approvers and one who is not.
var Users = []devidp.User{
	{ID: "u-dana", Username: "dana", Name: "Dana", Email: "dana@acme.test", Groups: []string{devidp.ApproverGroup}},
	{ID: "u-omar", Username: "omar", Name: "Omar", Email: "omar@acme.test", Groups: []string{devidp.ApproverGroup}},
	{ID: "u-kim", Username: "kim", Name: "Kim", Email: "kim@acme.test", Groups: []string{devidp.ApproverGroup}},
	{ID: "u-nico", Username: "nico", Name: "Nico", Email: "nico@acme.test", Groups: []string{"dev"}},
}

// Clock is a settable clock.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now is the wall clock moved by every Advance so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// Options adjust a harness.
type Options struct {
	Policy    broker.Policy
	FreshAuth time.Duration
	RingSize  int
	// AutoApprove signs every device code in as this user, for clients
	// (the CLI) the test cannot hand a code to.
	AutoApprove string
	// ApproverGroup is the group the server requires (default the
	// provider's approver group).
	ApproverGroup string
	// VerifierClientID is the audience the server expects of ID tokens
	// (default the provider's client): set it to test a wrong audience.
	VerifierClientID string
	// WrapStore, when set, wraps the store the broker writes through (a
	// store whose commits fail, for the fault tests); h.Store stays the
	// bbolt store underneath.
	WrapStore func(broker.Store) broker.Store
}

// Harness is a running writ with its operator API.
type Harness struct {
	T     testing.TB
	URL   string
	Svc   *broker.Service
	API   *opapi.Server
	IDP   *devidp.Provider
	Clock *Clock
	Store *store.Store

	opts   Options
	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
	path   string

	connMu sync.Mutex
	conns  map[net.Conn]struct{}

	// nextDevice is who signs in with the next device code a client other
	// than SignIn asks for (the CLI in a child process).
	nextDevice atomic.Pointer[string]
}

// Start starts a harness; everything stops when the test ends.
func Start(t testing.TB, o Options) *Harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var href atomic.Pointer[Harness]
	var idpRef atomic.Pointer[devidp.Provider]
	idp, err := devidp.Start(ctx, devidp.Options{Users: Users, PollInterval: time.Second, AutoApprove: o.AutoApprove,
		OnDeviceCode: func(code string) {
			h := href.Load()
			if h == nil {
				return
			}
			if u := h.nextDevice.Swap(nil); u != nil {
				// The provider wants this callback to return at once.
				go func() { _ = idpRef.Load().ApproveDevice(code, *u) }()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	idpRef.Store(idp)
	t.Cleanup(func() { _ = idp.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{T: t, URL: "http://" + ln.Addr().String(), IDP: idp, Clock: &Clock{}, opts: o, ln: ln}
	href.Store(h)
	h.path = t.TempDir() + "/writ.db"
	h.start()
	t.Cleanup(h.Stop)
	return h
}

// Config is the broker configuration of every harness.
func Config() *broker.Config {
	key, err := agent.GenerateKey(Agent, jose.EdDSA)
	if err != nil {
		panic(err)
	}
	return &broker.Config{
		Limits: broker.DefaultLimits,
		Resources: []broker.Resource{{URI: GitURI, Name: "Source hosting", Scopes: []broker.Scope{
			{Name: "contents:read", Risk: broker.RiskLow}, {Name: "contents:write", Risk: broker.RiskHigh},
			{Name: "secrets:read", Risk: broker.RiskCritical},
		}}},
		Agents: []broker.Agent{{ID: Agent, Name: "Release bot", Keys: []jose.JSONWebKey{key.PublicJWK()},
			Ceiling: []broker.CeilingEntry{{Resource: GitURI, Scopes: []string{"contents:read", "contents:write", "secrets:read"}}}}},
	}
}

func (h *Harness) start() {
	t := h.T
	st, err := store.Open(h.path, store.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	var through broker.Store = st
	if h.opts.WrapStore != nil {
		through = h.opts.WrapStore(st)
	}
	svc, err := broker.New(context.Background(), Config(), through, broker.Options{Issuer: h.URL, Now: h.Clock.Now, Logger: quiet,
		Policy: h.opts.Policy, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000})
	if err != nil {
		t.Fatal(err)
	}
	aud := h.opts.VerifierClientID
	if aud == "" {
		aud = devidp.ClientID
	}
	group := h.opts.ApproverGroup
	if group == "" {
		group = devidp.ApproverGroup
	}
	ver, err := operator.New(operator.Config{Issuer: h.IDP.Issuer(), ClientID: aud, ApproverGroup: group, Now: h.Clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api, err := opapi.New(svc, opapi.Options{PublicURL: h.URL, Verifier: ver, OIDCIssuer: h.IDP.Issuer(),
		ApproverGroup: group, ClientID: devidp.ClientID, FreshAuth: h.opts.FreshAuth,
		RingSize: h.opts.RingSize, Heartbeat: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.Svc, h.API, h.Store, h.cancel, h.done = svc, api, st, cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	wg.Go(func() { _ = api.Run(ctx) })
	h.srv = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ConnState: func(c net.Conn, st http.ConnState) {
			h.connMu.Lock()
			defer h.connMu.Unlock()
			if h.conns == nil {
				h.conns = make(map[net.Conn]struct{})
			}
			switch st {
			case http.StateNew:
				h.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(h.conns, c)
			}
		}}
	ln := h.ln
	wg.Go(func() { _ = h.srv.Serve(ln) })
	go func() { wg.Wait(); close(h.done) }()
	// The operator API subscribes in Run: wait until it has, so nothing
	// a test does next is missed by the stream.
	deadline := time.Now().Add(10 * time.Second)
	for !api.Subscribed() {
		if time.Now().After(deadline) {
			t.Fatal("operator API never subscribed to the broker")
		}
		time.Sleep(time.Millisecond)
	}
}

// Stop stops the server and closes the store (idempotent).
func (h *Harness) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	_ = h.srv.Close()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.T.Errorf("the server did not stop within 20 s")
	}
	_ = h.Store.Close()
	h.cancel = nil
}

// DropConnections cuts every open connection, as a network failure
// would; the server keeps running.
func (h *Harness) DropConnections() {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	for c := range h.conns {
		_ = c.Close()
	}
}

// Reconfigure changes the options the next Restart starts with.
func (h *Harness) Reconfigure(f func(*Options)) { f(&h.opts) }

// Restart stops the server and starts a new one on the same address and
// store, as a restarted `writ serve` would be.
func (h *Harness) Restart() {
	h.T.Helper()
	addr := h.ln.Addr().String()
	h.Stop()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if h.ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			h.T.Fatalf("listen again on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.start()
}

// ApproveNextDevice signs the next device code a client asks for (one
// this test cannot see, such as the CLI's in a child process) in as
// username.
func (h *Harness) ApproveNextDevice(username string) { h.nextDevice.Store(&username) }

// SignIn signs username in at the provider through the device flow and
// returns the verified session. The client side checks the group named
// (default the approver group), so a non-approver can get a token to
// present to the server.
func (h *Harness) SignIn(username, group string) *operator.Session {
	h.T.Helper()
	if group == "" {
		group = devidp.ApproverGroup
	}
	oc, err := operator.New(operator.Config{Issuer: h.IDP.Issuer(), ClientID: devidp.ClientID, ApproverGroup: group,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	da, err := oc.StartDevice(ctx)
	if err != nil {
		h.T.Fatal(err)
	}
	if err := h.IDP.ApproveDevice(da.UserCode, username); err != nil {
		h.T.Fatal(err)
	}
	sess, err := oc.WaitDevice(ctx, da)
	if err != nil {
		h.T.Fatalf("sign in %s: %v", username, err)
	}
	return sess
}

// Client signs username in and returns an operator API client for them.
func (h *Harness) Client(username string, onConn func(bool, error)) *client.Client {
	h.T.Helper()
	sess := h.SignIn(username, "")
	c, err := client.New(client.Options{Server: h.URL, OnConnection: onConn, Backoff: 20 * time.Millisecond,
		IDToken: func(context.Context) (string, error) { return sess.IDToken(), nil }})
	if err != nil {
		h.T.Fatal(err)
	}
	if err := c.SignIn(context.Background()); err != nil {
		h.T.Fatalf("client sign-in %s: %v", username, err)
	}
	return c
}

// Submit files a request from the harness's agent, as the agent API would.
func (h *Harness) Submit(intent string, scopes ...string) *broker.TaskRequest {
	h.T.Helper()
	if len(scopes) == 0 {
		scopes = []string{"contents:read"}
	}
	r, err := h.Svc.Submit(context.Background(), Agent, broker.SubmitInput{LoginHint: "oncall", Intent: intent, Scopes: scopes, Resource: GitURI})
	if err != nil {
		h.T.Fatalf("submit: %v", err)
	}
	return r
}
