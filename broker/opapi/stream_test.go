package opapi_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

// sse is one raw event-stream connection.
type sse struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (r *raw) events(t *testing.T, tok, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", r.h.URL+opapi.PathEvents, nil)
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", r.proof("GET", opapi.PathEvents, tok))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sse{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next reads the next event, skipping keep-alives.
func (s *sse) next(t *testing.T) (id, event string) {
	t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case line == "" && event != "":
			return id, event
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", ""
}

func TestStreamResumeAndRing(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{RingSize: 8})
	r := newRaw(t, h)
	tok := r.token(h.SignIn("dana", "").IDToken())

	s := r.events(t, tok, "")
	helloID, ev := s.next(t)
	if ev != "hello" {
		t.Fatalf("first event %q, want hello", ev)
	}
	h.Submit("one")
	id1, ev := s.next(t)
	if ev != "request.submitted" {
		t.Fatalf("event %q", ev)
	}
	s.resp.Body.Close()

	// Two more while away: a reconnect from id1 gets exactly those.
	h.Submit("two")
	h.Submit("three")
	s = r.events(t, tok, id1)
	idA, evA := s.next(t)
	idB, evB := s.next(t)
	if evA != "request.submitted" || evB != "request.submitted" || idA == id1 || idA == idB {
		t.Fatalf("resumed with %s %s, %s %s after %s", idA, evA, idB, evB, id1)
	}
	h.Submit("four")
	if _, ev := s.next(t); ev != "request.submitted" {
		t.Fatalf("live after resume: %q", ev)
	}
	s.resp.Body.Close()

	for _, tc := range []struct{ name, last string }{
		{"fell out of the ring", helloID},
		{"another run's id", "zzzzzzzz-3"},
		{"garbage", "nonsense"},
		{"from the future", strings.Split(helloID, "-")[0] + "-999999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "fell out of the ring" {
				for range 10 {
					h.Submit("flood")
				}
			}
			s := r.events(t, tok, tc.last)
			if _, ev := s.next(t); ev != "resync" {
				t.Fatalf("got %q, want resync", ev)
			}
			h.Submit("after")
			if _, ev := s.next(t); ev != "request.submitted" {
				t.Fatalf("live after resync: %q", ev)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	r := newRaw(t, h)
	tok := r.token(h.SignIn("dana", "").IDToken())
	post := func(key string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", h.URL+"/v1/revoke-all", strings.NewReader(`{"reason":"drill","freeze":false}`))
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", r.proof("POST", "/v1/revoke-all", tok))
		req.Header.Set(opapi.IdempotencyHeader, key)
		return r.do(req)
	}
	epoch := h.Svc.IssuerState().Epoch
	resps := make([]*http.Response, 3)
	bodies := make([]map[string]any, 3)
	race(
		func() error { resps[0], bodies[0] = post("k1"); return nil },
		func() error { resps[1], bodies[1] = post("k1"); return nil },
		func() error { resps[2], bodies[2] = post("k1"); return nil },
	)
	replayed := 0
	for i, resp := range resps {
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %v", i, resp.StatusCode, bodies[i])
		}
		if resp.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
		if bodies[i]["revocation"].(map[string]any)["id"] != bodies[0]["revocation"].(map[string]any)["id"] {
			t.Errorf("call %d answered another revocation", i)
		}
	}
	if replayed != 2 {
		t.Errorf("%d answers replayed, want 2", replayed)
	}
	if got := h.Svc.IssuerState().Epoch; got != epoch+1 {
		t.Errorf("epoch moved %d times, want once", got-epoch)
	}
	if resp, _ := post("k2"); resp.StatusCode != 200 || h.Svc.IssuerState().Epoch != epoch+2 {
		t.Errorf("a new key is a new action")
	}
	// The same key with another body is refused, not replayed.
	req, _ := http.NewRequest("POST", h.URL+"/v1/revoke-all", strings.NewReader(`{"reason":"another","freeze":false}`))
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", r.proof("POST", "/v1/revoke-all", tok))
	req.Header.Set(opapi.IdempotencyHeader, "k1")
	if resp, body := r.do(req); resp.StatusCode != http.StatusUnprocessableEntity || h.Svc.IssuerState().Epoch != epoch+2 {
		t.Errorf("a reused key with another body: %d %v", resp.StatusCode, body)
	}
}

func TestStreamEndsWithTheOperatorToken(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	r := newRaw(t, h)
	tok := r.token(h.SignIn("dana", "").IDToken())
	h.Clock.Advance(opapi.DefaultTokenLifetime - time.Second) // a second of the token left
	s := r.events(t, tok, "")
	if _, ev := s.next(t); ev != "hello" {
		t.Fatalf("first event %q", ev)
	}
	done := make(chan struct{})
	go func() {
		for s.sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the stream outlived the operator token")
	}
}
