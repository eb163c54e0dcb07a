package cmd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/opapitest"
	"github.com/writhq/writ/tui"
)

// The poller sends a status at once and after each kick, sends nothing
// for a failed fetch, and stops with its context (no leaked goroutine).
func TestPollPolicyStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kick := newStatusKick()
	got := make(chan tea.Msg, 8)
	var mu sync.Mutex
	fail := false
	fetched := make(chan struct{}, 8)
	fetch := func(context.Context) (tui.PolicyStatusMsg, error) {
		mu.Lock()
		defer mu.Unlock()
		fetched <- struct{}{}
		if fail {
			return tui.PolicyStatusMsg{}, errors.New("server out of reach")
		}
		return tui.PolicyStatusMsg{File: "policy.yaml"}, nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pollPolicyStatus(ctx, time.Hour, kick, fetch, func(m tea.Msg) { got <- m })
	}()
	if m := (<-got).(tui.PolicyStatusMsg); m.File != "policy.yaml" {
		t.Fatalf("first status: %+v", m)
	}
	<-fetched
	mu.Lock()
	kick.kick()
	kick.kick() // a second pending kick is folded into the first, never blocks
	mu.Unlock()
	<-fetched
	<-got
	mu.Lock()
	fail = true
	mu.Unlock()
	kick.kick()
	<-fetched // the failed fetch
	kick.kick()
	<-fetched // the loop came round again: the failed fetch's turn is over
	cancel()
	<-done
	// At most the one folded kick's status is left; nothing for a failure.
	for len(got) > 0 {
		if m := (<-got).(tui.PolicyStatusMsg); m.File != "policy.yaml" {
			t.Fatalf("sent a status for a failed fetch: %+v", m)
		}
	}
}

// A remote console's status comes from the operator API: the standing
// approvals with their uses and the maximum.
func TestRemotePolicyStatus(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	c := h.Client("dana", nil)
	ctx := context.Background()
	r := h.Submit("weekly docs sync")
	if _, err := c.Approve(ctx, broker.Operator{}, r.ID); err != nil {
		t.Fatal(err)
	}
	sa, err := c.CreateStanding(ctx, broker.Operator{}, r.ID, 30*time.Minute, "weekly")
	if err != nil {
		t.Fatal(err)
	}
	h.Submit("weekly docs sync, again")
	m, err := remotePolicyStatus(c, h.Clock.Now)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Standing) != 1 || m.Standing[0].ID != sa.ID || len(m.Standing[0].Uses) != 1 || m.MaxStanding != broker.DefaultMaxStanding {
		t.Fatalf("remote status: %+v", m)
	}
}
