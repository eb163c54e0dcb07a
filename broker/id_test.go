package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
)

// TestRequestIDsNeverStartWithADash: an auth_req_id is typed after CLI
// commands (`writ requests approve ID`), where a leading '-' reads as a
// flag (CI found one). The entropy source here starts every draw with the
// bits of '-' until it has been asked enough.
func TestRequestIDsNeverStartWithADash(t *testing.T) {
	dash := bytes.Repeat([]byte{0xF8}, 20*3) // 111110…: '-' in base64url, three draws' worth
	src := io.MultiReader(bytes.NewReader(dash), rand.Reader)
	svc, err := broker.New(context.Background(), testConfig(), brokertest.NewStore(), broker.Options{
		Issuer: "https://writ.example", Now: newClock().Now, Rand: src, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r, err := svc.Submit(context.Background(), "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
			Scopes: []string{"contents:read"}, Resource: gitURI, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if r.ID[0] == '-' || r.ID[0] == '_' {
			t.Fatalf("request id %q starts with %q", r.ID, r.ID[0])
		}
	}
}

// TestIDsAreTimeOrdered (issue 12): the ids of the records every cycle
// writes lead with the time, so the store adds them to the end of their
// buckets; shortened for display, ids made together stay apart, and a
// secret id is never shown whole.
func TestIDsAreTimeOrdered(t *testing.T) {
	clk := newClock()
	svc, err := broker.New(context.Background(), testConfig(), brokertest.NewStore(), broker.Options{
		Issuer: "https://writ.example", Now: clk.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000, Policy: approveAll{},
	})
	if err != nil {
		t.Fatal(err)
	}
	var reqs, grants []string
	shorts := map[string]bool{}
	for i := range 50 {
		if i%10 == 0 {
			clk.Advance(time.Millisecond)
		}
		r, err := svc.Submit(context.Background(), "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
			Scopes: []string{"contents:read"}, Resource: gitURI, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		reqs, grants = append(reqs, r.ID), append(grants, r.GrantID)
		for _, id := range []string{r.ID, r.GrantID, r.DecisionID} {
			s := broker.ShortID(id)
			if shorts[s] {
				t.Errorf("ShortID(%s) = %s, as for another id made now", id, s)
			}
			shorts[s] = true
			if len(s) >= len(id) {
				t.Errorf("ShortID(%s) = %s shows it whole", id, s)
			}
		}
	}
	for _, ids := range [][]string{reqs, grants} {
		for i := 10; i < len(ids); i++ {
			if i%10 == 0 && ids[i-1] >= ids[i] {
				t.Errorf("id %s made a millisecond after %s sorts before it", ids[i], ids[i-1])
			}
		}
	}
}
