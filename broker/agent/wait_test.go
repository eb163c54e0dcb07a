package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/writhq/writ/broker/dpop"
)

// scripted is a fake writ whose token endpoint answers from a script,
// and which checks what the SDK sends.
type scripted struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []func(w http.ResponseWriter, r *http.Request)
	polls  int
	jtis   map[string]bool
	proofs []string
	issuer string
}

func newScripted(t *testing.T, issuerOverride string, script ...func(http.ResponseWriter, *http.Request)) *scripted {
	s := &scripted{t: t, script: script, jtis: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		iss := s.srv.URL
		if issuerOverride != "" {
			iss = issuerOverride
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "token_endpoint": s.srv.URL + "/token",
			"backchannel_authentication_endpoint": s.srv.URL + "/bc-authorize", "revocation_endpoint": s.srv.URL + "/revoke"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		s.checkAssertion(r)
		s.mu.Lock()
		s.proofs = append(s.proofs, r.Header.Get("DPoP"))
		i := s.polls
		s.polls++
		s.mu.Unlock()
		if i >= len(s.script) {
			t.Errorf("poll %d beyond the script", i+1)
			oauthErr(w, 400, "invalid_grant", "")
			return
		}
		s.script[i](w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.issuer = s.srv.URL
	return s
}

// checkAssertion checks the client assertion: fresh jti, right claims.
func (s *scripted) checkAssertion(r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.t.Error(err)
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		s.t.Errorf("client assertion: %v", err)
		return
	}
	var c jwt.Claims
	_ = tok.UnsafeClaimsWithoutVerification(&c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jtis[c.ID] || c.Issuer != "bot" || c.Subject != "bot" || !c.Audience.Contains(s.issuer) {
		s.t.Errorf("client assertion claims %+v (jti reused: %v)", c, s.jtis[c.ID])
	}
	s.jtis[c.ID] = true
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func answer(status int, code string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { oauthErr(w, status, code, "") }
}

func grantToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "DPoP", "expires_in": 300,
		"scope": "contents:read", "authorization_details": []map[string]any{{"type": "https://writ.dev/agent-task", "actions": []string{"contents:read"}}}})
}

func newTestClient(t *testing.T, s *scripted) *Client {
	k, err := GenerateKey("bot", jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), s.srv.URL, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.slowDownStep = 20 * time.Millisecond
	return c
}

func TestWaitHonoursIntervalAndSlowDown(t *testing.T) {
	s := newScripted(t, "", answer(400, "authorization_pending"), answer(400, "slow_down"),
		answer(400, "authorization_pending"), answer(503, "temporarily_unavailable"), grantToken)
	c := newTestClient(t, s)
	p, _ := c.Resume("req-1", 10*time.Millisecond)
	var seen []Progress
	start := time.Now()
	task, err := c.Wait(context.Background(), p, func(pr Progress) { seen = append(seen, pr) })
	if err != nil {
		t.Fatal(err)
	}
	if task.AccessToken != "at-1" || task.Scopes[0] != "contents:read" || len(task.Details) != 1 || task.JKT() == "" {
		t.Fatalf("task %+v", task)
	}
	want := []struct {
		status   string
		interval time.Duration
	}{{"authorization_pending", 10 * time.Millisecond}, {"slow_down", 30 * time.Millisecond},
		{"authorization_pending", 30 * time.Millisecond}, {"retrying", 30 * time.Millisecond}}
	if len(seen) != len(want) {
		t.Fatalf("progress %+v", seen)
	}
	for i, w := range want {
		if seen[i].Status != w.status || seen[i].Interval != w.interval || seen[i].Polls != i+1 {
			t.Errorf("progress %d: %+v, want %s every %s", i, seen[i], w.status, w.interval)
		}
	}
	// 10 ms, then 10 ms, then 3 × 30 ms at least: the interval was kept.
	if el := time.Since(start); el < 110*time.Millisecond {
		t.Errorf("five polls took %s: polling faster than asked", el)
	}
	// Every poll carried a fresh proof of the same key, for the token endpoint.
	v := &dpop.Verifier{Replay: dpop.NewReplayCache(0)}
	for i, proof := range s.proofs {
		pr, err := v.Verify([]string{proof}, http.MethodPost, s.srv.URL+"/token", "")
		if err != nil || pr.JKT != task.JKT() {
			t.Errorf("proof %d: %v", i, err)
		}
	}
}

func TestWaitEndsOnDecisionOrCancel(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		s := newScripted(t, "", answer(400, "authorization_pending"), func(w http.ResponseWriter, r *http.Request) {
			oauthErr(w, 400, "access_denied", "denied: not part of the task")
		})
		c := newTestClient(t, s)
		p, _ := c.Resume("req-1", time.Millisecond)
		_, err := c.Wait(context.Background(), p, nil)
		var e *Error
		if !errors.Is(err, ErrDenied) || !errors.As(err, &e) || !strings.Contains(e.Description, "not part of the task") {
			t.Fatalf("err %v, want ErrDenied with the reason", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		s := newScripted(t, "", answer(400, "expired_token"))
		c := newTestClient(t, s)
		p, _ := c.Resume("req-1", time.Millisecond)
		if _, err := c.Wait(context.Background(), p, nil); !errors.Is(err, ErrExpired) {
			t.Fatalf("err %v, want ErrExpired", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		s := newScripted(t, "", answer(400, "authorization_pending"), answer(400, "authorization_pending"))
		c := newTestClient(t, s)
		p, _ := c.Resume("req-1", time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := c.Wait(ctx, p, nil); done <- err }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return when cancelled")
		}
	})
	t.Run("store cannot write for a while", func(t *testing.T) {
		// writ answers 503 temporarily_unavailable while its store cannot
		// write (cmd TestFaultDiskFull): more of them in a row than
		// maxPollFailures does not end the wait.
		var script []func(http.ResponseWriter, *http.Request)
		for i := 0; i < maxPollFailures+2; i++ {
			script = append(script, answer(503, "temporarily_unavailable"))
		}
		s := newScripted(t, "", append(script, grantToken)...)
		c := newTestClient(t, s)
		p, _ := c.Resume("req-1", time.Millisecond)
		if task, err := c.Wait(context.Background(), p, nil); err != nil || task.AccessToken != "at-1" {
			t.Fatalf("Wait gave up while writ could not write: %v after %d polls", err, s.polls)
		}
	})
	t.Run("server keeps failing", func(t *testing.T) {
		var script []func(http.ResponseWriter, *http.Request)
		for i := 0; i < maxPollFailures; i++ {
			script = append(script, answer(500, "server_error"))
		}
		s := newScripted(t, "", script...)
		c := newTestClient(t, s)
		p, _ := c.Resume("req-1", time.Millisecond)
		if _, err := c.Wait(context.Background(), p, nil); err == nil || s.polls != maxPollFailures {
			t.Fatalf("err %v after %d polls", err, s.polls)
		}
	})
}

func TestPollRetriesWithNonce(t *testing.T) {
	var s *scripted
	s = newScripted(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "n-1")
		oauthErr(w, 400, "use_dpop_nonce", "")
	}, func(w http.ResponseWriter, r *http.Request) {
		v := &dpop.Verifier{Replay: dpop.NewReplayCache(0), CheckNonce: func(n string) bool { return n == "n-1" }}
		if _, err := v.VerifyRequest(r, s.srv.URL+"/token", ""); err != nil {
			t.Errorf("retried proof: %v", err)
		}
		grantToken(w, r)
	})
	c := newTestClient(t, s)
	p, _ := c.Resume("req-1", time.Millisecond)
	if _, err := c.Poll(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if s.polls != 2 {
		t.Fatalf("%d requests, want 2", s.polls)
	}
}

func TestDiscoveryChecksIssuer(t *testing.T) {
	s := newScripted(t, "https://impostor.example")
	k, _ := GenerateKey("bot", jose.EdDSA)
	if _, err := New(context.Background(), s.srv.URL, k, Options{}); err == nil || !strings.Contains(err.Error(), "impostor") {
		t.Fatalf("err %v, want an issuer mismatch", err)
	}
	if _, err := New(context.Background(), "", k, Options{}); err == nil {
		t.Fatal("no issuer at all")
	}
}
