package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/broker/opapi/opapitest"
	"github.com/writhq/writ/store/storetest"
)

// TestFlowStoreCannotWrite (issue 12, faults): while the store cannot
// write, the console says so when an approval or a revocation fails, and
// leaves the request waiting and the grant active (nothing is shown done
// that was not written); when space returns the same keys work.
func TestFlowStoreCannotWrite(t *testing.T) {
	c := &clock{t: fixedNow}
	st := &brokertest.FullStore{Store: storetest.MustOpen(t)}
	svc, err := broker.New(t.Context(), fixtureConfig(), st, broker.Options{
		Issuer: "https://writ.test", Now: c.Now, SubmitBurst: 100, SubmitRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	g := approved(t, svc, "release-bot", "open PR", "contents:write")
	req := submit(t, svc, "reader-bot", "read the onboarding guide", "https://api.github.com", 5*time.Minute, "contents:read")
	// The broker's background work runs, as under writ console: it tells
	// the console when the store's write health changes.
	runCtx, stopRun := context.WithCancel(t.Context())
	var run sync.WaitGroup
	run.Go(func() { _ = svc.Run(runCtx) })
	t.Cleanup(func() { stopRun(); run.Wait() }) // before the store closes
	f := startFlow(t, svc, Options{Now: c.Now, Session: session(c)}, 140, 30)
	f.waitShow("read the onboarding guide", "[LOW]")
	if strings.Contains(f.p.current(), "STORE CANNOT WRITE") {
		t.Fatal("the store banner shows while the store writes")
	}

	st.Full.Store(true)
	f.keys("a")
	f.waitShow("approve failed: writ cannot write to its store")
	// The banner says so until writes land again, with since when and why.
	f.waitShow("STORE CANNOT WRITE since "+fixedNow.Local().Format("15:04:05")+": update store", "no space left on device")
	if got, _ := svc.Request(context.Background(), req.ID); got.State != broker.RequestPending {
		t.Fatalf("request %s is %s though its approval could not be written", req.ID, got.State)
	}
	f.keys("2")
	f.waitShow("ACTIVE", "open PR")
	f.keys("r")
	f.waitShow("Revoke grant")
	f.keys("enter")
	f.waitShow("revoke failed: writ cannot write to its store")
	if got, _ := svc.Grant(context.Background(), g.ID); got.State != broker.GrantActive {
		t.Fatalf("grant %s is %s though its revocation could not be written", g.ID, got.State)
	}

	st.Full.Store(false)
	f.keys("r")
	f.waitShow("Revoke grant")
	f.keys("enter")
	f.waitShow("revoked grant", "REVOKED")
	f.waitFor("the store banner gone once a write landed", func(s string) bool { return !strings.Contains(s, "STORE CANNOT WRITE") })
	f.keys("1")
	f.waitShow("read the onboarding guide")
	f.keys("a")
	f.waitShow("approved reader-bot's request as asked")
}

// TestRemoteConsoleStoreBanner (issue 12, faults): `writ console --server`
// shows the store banner too: a console running when the store stops
// writing learns it from the event stream, one started meanwhile from the
// operator API's status, and both clear it when a write lands.
func TestRemoteConsoleStoreBanner(t *testing.T) {
	var st *brokertest.FullStore
	h := opapitest.Start(t, opapitest.Options{WrapStore: func(inner broker.Store) broker.Store {
		st = &brokertest.FullStore{Store: inner}
		return st
	}})
	dana := startRemote(t, h, "dana")
	if strings.Contains(dana.p.current(), "STORE CANNOT WRITE") {
		t.Fatal("the store banner shows while the store writes")
	}

	// An agent's submission is the write that fails: nobody at a console
	// did anything, and the console says so all the same.
	st.Full.Store(true)
	if _, err := h.Svc.Submit(t.Context(), opapitest.Agent, broker.SubmitInput{LoginHint: "oncall", Intent: "refused",
		Scopes: []string{"contents:read"}, Resource: opapitest.GitURI}); !errors.Is(err, broker.ErrStoreUnavailable) {
		t.Fatalf("submission on a full store: %v", err)
	}
	dana.waitShow("STORE CANNOT WRITE since", "no space left on device")
	omar := startRemote(t, h, "omar")
	omar.waitShow("STORE CANNOT WRITE since", "no space left on device")

	st.Full.Store(false)
	h.Submit("read the changelog")
	for _, c := range []*remoteConsole{dana, omar} {
		c.waitShow("read the changelog")
		c.waitFor("the store banner gone once a write landed", func(s string) bool { return !strings.Contains(s, "STORE CANNOT WRITE") })
	}
}
