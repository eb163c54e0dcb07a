package broker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextStoreEvent returns the next EventStoreHealth on events.
func nextStoreEvent(t *testing.T, events <-chan broker.Event) broker.StoreHealth {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e := <-events:
			if e.Kind == broker.EventStoreHealth {
				if e.Store == nil {
					t.Fatal("a store health event without its health")
				}
				return *e.Store
			}
		case <-deadline.C:
			t.Fatal("no store health event")
		}
	}
}

// TestStoreHealthProbe (issue 12, faults): a commit refused as the
// store's marks it unwritable, with when and why; refusals of the
// domain's own (bad input) leave the mark alone; while the store is
// marked, each probe tick tries a write of its own, and the first that
// lands clears the mark without any caller writing. Each change is
// published once, as an EventStoreHealth.
func TestStoreHealthProbe(t *testing.T) {
	st := &brokertest.FullStore{Store: brokertest.NewStore()}
	c := newClock()
	svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{
		Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	events := svc.Subscribe(ctx)
	tick := make(chan time.Time)
	var wg sync.WaitGroup
	wg.Go(func() { svc.WatchStoreForTest(ctx, tick) })
	defer wg.Wait()
	defer cancel()

	if h := svc.StoreHealth(); !h.Writable || h.FailedCommits != 0 {
		t.Fatalf("a new service's store health: %+v", h)
	}
	// A tick while writable writes nothing.
	before := st.Commits.Load()
	tick <- c.Now()
	tick <- c.Now() // the first tick has been handled once the second is taken
	if n := st.Commits.Load() - before; n != 0 {
		t.Fatalf("the probe wrote %d times while the store was writable", n)
	}

	submit := func() error {
		_, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "open PR",
			Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 20 * time.Minute})
		return err
	}
	st.Full.Store(true)
	failedAt := c.Now().UTC()
	if err := submit(); !errors.Is(err, broker.ErrStoreUnavailable) {
		t.Fatalf("submission on a full store: %v", err)
	}
	h := nextStoreEvent(t, events)
	if h.Writable || !h.Since.Equal(failedAt) || !strings.Contains(h.Error, "no space left on device") ||
		strings.Contains(h.Error, broker.ErrStoreUnavailable.Message) || h.FailedCommits == 0 ||
		h.Cause != "no space left on device" {
		t.Fatalf("after a refused commit: %+v", h)
	}
	if got := svc.StoreHealth(); got != h {
		t.Fatalf("StoreHealth %+v, the event said %+v", got, h)
	}
	// A refusal of the domain's own says nothing about the disk.
	if _, err := svc.Submit(ctx, "no-such-agent", broker.SubmitInput{LoginHint: "oncall", Intent: "x",
		Scopes: []string{"contents:read"}, Resource: gitURI}); err == nil || errors.Is(err, broker.ErrStoreUnavailable) {
		t.Fatalf("an unknown agent's submission: %v", err)
	}

	// The probe fails while the store is full: still marked, one more
	// failed commit, no event.
	failed := svc.StoreHealth().FailedCommits
	c.Advance(5 * time.Second)
	tick <- c.Now()
	waitUntil(t, "the failed probe is counted", func() bool { return svc.StoreHealth().FailedCommits == failed+1 })
	if h := svc.StoreHealth(); h.Writable || !h.Since.Equal(failedAt) {
		t.Fatalf("after a failed probe: %+v", h)
	}

	// Space returns: nothing but the probe writes, and it clears the mark.
	st.Full.Store(false)
	c.Advance(5 * time.Second)
	tick <- c.Now()
	h = nextStoreEvent(t, events)
	if !h.Writable || h.Error != "" || h.Cause != "" || !h.Since.Equal(c.Now().UTC()) || h.FailedCommits != failed+1 {
		t.Fatalf("after the probe landed: %+v", h)
	}
	var probed []byte
	if err := svc.ViewRecords(ctx, func(tx broker.RecordReader) error {
		var err error
		probed, err = tx.Record(broker.RecordStoreProbe, "probe")
		return err
	}); err != nil || !strings.Contains(string(probed), `"at"`) {
		t.Fatalf("the probe record: %s, %v", probed, err)
	}
	if err := submit(); err != nil {
		t.Fatalf("submission once space is back: %v", err)
	}
}
