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
