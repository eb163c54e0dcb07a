package ssf_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire/ssfwire"
)

// rawPoll polls without acknowledging and returns the SETs as sent.
func (r *receiver) rawPoll(pollURL string, req ssfwire.PollRequest) map[string]string {
	r.t.Helper()
	code, b := r.do("POST", pollURL, req)
	if code != http.StatusOK {
		r.t.Fatalf("poll: %d %s", code, b)
	}
	var resp ssfwire.PollResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		r.t.Fatal(err)
	}
	return resp.Sets
}

// TestReceiverStreamsShareSETs: the replicas of one resource server, each
// with its own stream, are sent the same SET for a signal (made once);
// another receiver gets its own. A receiver still acknowledging a SET by
// the jti it had before SETs were shared (stream.seq) moves its cursor.
func TestReceiverStreamsShareSETs(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, "rs-1")
	replicas := []ssfwire.StreamConfig{r.create(nil), r.create(nil), r.create(nil)}
	other := newReceiver(t, h, "rs-2")
	oc := other.create(nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "done")

	var jti, set string
	for i, c := range replicas {
		got := r.rawPoll(c.Delivery.EndpointURL, immediate())
		if len(got) != 1 {
			t.Fatalf("replica %d: %d SETs, want 1", i, len(got))
		}
		for k, v := range got {
			if i == 0 {
				jti, set = k, v
			} else if k != jti || v != set {
				t.Errorf("replica %d got SET %s, replica 0 got %s: want the same SET", i, k, jti)
			}
		}
	}
	sets, _ := other.poll(oc, immediate())
	for k, s := range sets {
		if k == jti || s.Audience[0] != "rs-2" {
			t.Errorf("rs-2 got jti %s aud %v; want its own SET (rs-1's is %s)", k, s.Audience, jti)
		}
	}
	// The SET verifies for its audience and names the signal in txn.
	sets, _ = r.poll(replicas[0], immediate())
	if s := sets[jti]; s == nil || s.TXN != jti[strings.LastIndexByte(jti, '.')+1:] || s.Subject.Session.ID != tok.Grant.ID {
		t.Fatalf("SET %s: %+v", jti, s)
	}

	seq := jti[strings.LastIndexByte(jti, '.')+1:]
	for i, ack := range []string{jti, replicas[2].StreamID + "." + seq} {
		c := replicas[i+1]
		if left := r.rawPoll(c.Delivery.EndpointURL, ssfwire.PollRequest{ReturnImmediately: true, Ack: []string{ack}}); len(left) != 0 {
			t.Errorf("after acknowledging %s: %d SETs left, want none", ack, len(left))
		}
	}
}

// TestFeedOlderThanTransmitter: a stream whose backfill reaches signals
// from before the transmitter started (read from the store, not the
// in-memory tail) gets them, then the newer ones, in feed order.
func TestFeedOlderThanTransmitter(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	before := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(before.Grant.ID, "before")

	t2, err := ssf.New(h.Ctx, h.Svc, ssf.Options{Authenticate: ssftest.BearerReceiver, PollTimeout: time.Second, Logger: ssftest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler(t2))
	defer srv.Close()
	after := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(after.Grant.ID, "after")

	r := newReceiver(t, h, "rs-1")
	c := r.create(nil) // made on t2 below, through srv; this one checks the URL form
	code, b := r.do("POST", srv.URL+"/ssf/stream", `{}`)
	if code != http.StatusCreated {
		t.Fatalf("create on the second transmitter: %d %s", code, b)
	}
	var c2 ssfwire.StreamConfig
	if err := json.Unmarshal(b, &c2); err != nil {
		t.Fatal(err)
	}
	c2.Delivery.EndpointURL = srv.URL + strings.TrimPrefix(c2.Delivery.EndpointURL, h.URL)
	if c2.Delivery.EndpointURL == c.Delivery.EndpointURL {
		t.Fatal("the second transmitter's stream is not served by srv")
	}
	sets, _ := r.poll(c2, immediate())
	got := []string{}
	for _, k := range keys(sets) {
		got = append(got, sets[k].Subject.Session.ID)
	}
	if len(got) != 2 || got[0] != before.Grant.ID || got[1] != after.Grant.ID {
		t.Errorf("SETs about %v, want [%s %s]", got, before.Grant.ID, after.Grant.ID)
	}
}

// TestLongPollOutlivesRun: a long poll waiting on the feed watcher that
// Run owns is not stranded when Run stops: it waits on its own and still
// answers with the next revocation.
func TestLongPollOutlivesRun(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{NoRun: true, Transmitter: ssf.Options{PollTimeout: time.Minute}})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- h.Transmitter.Run(ctx) }()

	got := make(chan int, 1)
	go func() {
		// Waits: nothing is due.
		resp, err := r.hc.Post(c.Delivery.EndpointURL, "application/json", strings.NewReader(`{}`))
		if err != nil {
			got <- -1
			return
		}
		defer resp.Body.Close()
		var pr ssfwire.PollResponse
		if json.NewDecoder(resp.Body).Decode(&pr) != nil {
			got <- -1
			return
		}
		got <- len(pr.Sets)
	}()
	waitFor(t, func() bool { return h.Transmitter.Stats().Polls >= 1 })
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "after Run stopped")
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("%d SETs (-1: the poll failed), want the revocation", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not answer within 30s")
	}
}
