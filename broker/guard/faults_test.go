package guard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// cutProxy forwards TCP connections to a target until it is cut: then it
// closes every connection it carries, mid-request or mid-answer, and
// closes new ones at once, until it is restored. It stops when the test
// ends.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	// waiting counts connections whose last bytes went to the server: a
	// request sent and its answer not begun, as during a long poll.
	waiting map[net.Conn]bool
	wg      sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, waiting: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.carry(c) })
	}
}

// track adds c to the connections a cut closes; false when cut already.
func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) carry(client net.Conn) {
	if !p.track(client) {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(server) {
		_ = client.Close()
		return
	}
	var both sync.WaitGroup
	pipe := func(dst, src net.Conn, toServer bool) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.waiting[client] = toServer
				p.mu.Unlock()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = dst.Close()
		_ = src.Close()
	}
	both.Go(func() { pipe(server, client, true) })
	both.Go(func() { pipe(client, server, false) })
	both.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	delete(p.waiting, client)
	p.mu.Unlock()
}

// inFlight is how many requests were sent and have no answer yet.
func (p *cutProxy) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, w := range p.waiting {
		if w {
			n++
		}
	}
	return n
}

// Cut closes every connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore carries connections again.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// waitFor polls cond every few milliseconds until it holds; it fails the
// test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestFeedCutMidStream: the guard's connection to the revocation feed is
// cut while a long poll is in flight, and writ stays unreachable for a
// while. The guard fails closed (every token refused with 503, even a
// live one) once the feed has been silent for StaleAfter; a grant revoked
// while it was cut off is refused as revoked as soon as the connection is
// back, and other tokens are accepted again.
func TestFeedCutMidStream(t *testing.T) {
	ssftest.CheckLeaks(t)
	// Long polls that outlast the cut, so it lands mid-request.
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 5 * time.Second}})
	proxy := newCutProxy(t, h.Server.Listener.Addr().String())
	g := startGuard(t, h, "rs-cut", func(c *guard.Config) {
		c.StaleAfter = 400 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: rewrite{to: proxy.URL(), next: h.Client("rs-cut").Transport}}
	})
	revoked := h.Mint(ssftest.Agent, "", "contents:read")
	live := h.Mint(ssftest.Agent, "", "contents:read")
	check := func(tok string) error {
		_, err := g.Check(context.Background(), request("GET", "/repos", "Bearer", tok))
		return err
	}
	for _, tok := range []string{revoked.AccessToken, live.AccessToken} {
		if err := check(tok); err != nil {
			t.Fatalf("before the cut: %v", err)
		}
	}
	waitFor(t, "a long poll in flight", func() bool { return proxy.inFlight() > 0 })

	proxy.Cut()
	h.Revoke(revoked.Grant.ID, "revoked while the guard was cut off")
	waitRefused(t, g, func() *http.Request { return request("GET", "/repos", "Bearer", live.AccessToken) }, guard.ReasonFeedUnavailable)
	var e *guard.Error
	if err := check(revoked.AccessToken); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("the revoked token while cut off: %v, want 503", err)
	}
	if st := g.Stats(); st.FeedFresh || !strings.Contains(st.FeedProblem, "revocation feed") {
		t.Errorf("stats while cut off: fresh %t, problem %q", st.FeedFresh, st.FeedProblem)
	}

	proxy.Restore()
	waitReady(t, g)
	if err := check(revoked.AccessToken); !errors.As(err, &e) || e.Reason != guard.ReasonRevoked {
		t.Errorf("the grant revoked during the cut, after it: %v, want %s", err, guard.ReasonRevoked)
	}
	if err := check(live.AccessToken); err != nil {
		t.Errorf("a live token after the cut: %v", err)
	}
}

// TestClockSkew: a guard whose clock is off from writ's. Token times
// (iat, nbf, exp) are judged with Config.Leeway (5 s by default) either
// way and refused beyond it, with the reason that says which; a DPoP proof
// signed on writ's clock is accepted within the verifier's skew and
// window; and the revocation feed does not depend on clocks at all: a
// guard minutes ahead still refuses a revoked token.
func TestClockSkew(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	bearer := h.Mint(ssftest.Agent, "", "contents:read")
	exp := time.Unix(int64(claimsOf(t, bearer.AccessToken)["exp"].(float64)), 0)
	untilExp := time.Until(exp)
	signer := newSigner(t)
	bound := h.Mint(ssftest.Agent, signer.JKT(), "contents:read")

	for _, tc := range []struct {
		name string
		skew time.Duration // guard's clock minus writ's
		dpop bool
		want string // refusal reason; "" accepted
	}{
		{"in step", 0, false, ""},
		{"guard 3s behind: iat and nbf in its future, within leeway", -3 * time.Second, false, ""},
		{"guard 30s behind: not valid yet", -30 * time.Second, false, guard.ReasonNotYetValid},
		{"guard 3s past exp: within leeway", untilExp + 3*time.Second, false, ""},
		{"guard 30s past exp: expired", untilExp + 30*time.Second, false, guard.ReasonExpired},
		{"guard 2m ahead, token still live", 2 * time.Minute, false, ""},
		{"DPoP, guard 3s behind the proof's iat: within skew", -3 * time.Second, true, ""},
		{"DPoP, guard 30s ahead of the proof's iat: within the window", 30 * time.Second, true, ""},
		{"DPoP, guard 2m ahead: the proof is too old", 2 * time.Minute, true, guard.ReasonDPoPProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skew := tc.skew
			g := startGuard(t, h, "rs-skew", func(c *guard.Config) { c.Now = func() time.Time { return time.Now().Add(skew) } })
			req := request("GET", "/repos", "Bearer", bearer.AccessToken)
			if tc.dpop {
				req = request("GET", "/repos", "DPoP", bound.AccessToken, proof(t, signer, "GET", "/repos", bound.AccessToken))
			}
			_, err := g.Check(context.Background(), req)
			var e *guard.Error
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.As(err, &e) || e.Reason != tc.want):
				t.Errorf("got %v, want a refusal for %s", err, tc.want)
			}
		})
	}

	// Revocation reaches a guard minutes ahead of writ: it needs no clock.
	ahead := startGuard(t, h, "rs-ahead", func(c *guard.Config) { c.Now = func() time.Time { return time.Now().Add(2 * time.Minute) } })
	victim := h.Mint(ssftest.Agent, "", "contents:read")
	if _, err := ahead.Check(context.Background(), request("GET", "/repos", "Bearer", victim.AccessToken)); err != nil {
		t.Fatalf("guard 2m ahead, before the revocation: %v", err)
	}
	h.Revoke(victim.Grant.ID, "clock skew test")
	waitRefused(t, ahead, func() *http.Request { return request("GET", "/repos", "Bearer", victim.AccessToken) }, guard.ReasonRevoked)
}
