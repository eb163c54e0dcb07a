package dpop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// nonceServer is an authorization server (/token) and a resource server
// (/resource) on loopback, each demanding its own DPoP nonce.
type nonceServer struct {
	*httptest.Server
	token string

	mu       sync.Mutex
	asNonce  string
	rsNonce  string
	rotate   bool           // refuse every nonce and issue a new one each time
	hits     map[string]int // path → requests
	bodies   []string       // bodies seen at /token
	lastAuth string
}

func newNonceServer(t *testing.T) *nonceServer {
	ns := &nonceServer{token: "tok-" + t.Name(), asNonce: "as-n1", rsNonce: "rs-n1", hits: map[string]int{}}
	v := &Verifier{Replay: NewReplayCache(0)}
	ns.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		ns.hits[r.URL.Path]++
		ns.lastAuth = r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		htu := ns.URL + r.URL.Path // the configured public URL, not Host
		vv := *v
		switch r.URL.Path {
		case "/token":
			ns.bodies = append(ns.bodies, string(body))
			vv.CheckNonce = func(n string) bool { return !ns.rotate && n == ns.asNonce }
			p, err := vv.VerifyRequest(r, htu, "")
			if err != nil {
				if ns.rotate {
					ns.asNonce += "+"
				}
				w.Header().Set("DPoP-Nonce", ns.asNonce)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, err.(*Error).Code(), err.(*Error).Msg)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"DPoP","expires_in":60,"cnf_jkt":%q}`, ns.token, p.JKT)
		case "/resource":
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
			if !ok || token != ns.token {
				w.Header().Set("WWW-Authenticate", v.Challenge(nil))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			vv.CheckNonce = func(n string) bool { return !ns.rotate && n == ns.rsNonce }
			if _, err := vv.VerifyRequest(r, htu, token); err != nil {
				if ns.rotate {
					ns.rsNonce += "+"
				}
				w.Header().Set("DPoP-Nonce", ns.rsNonce)
				w.Header().Set("WWW-Authenticate", v.Challenge(err))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "resource")
		}
	}))
	t.Cleanup(ns.Close)
	return ns
}

func (ns *nonceServer) count(path string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.hits[path]
}

func TestTransportNonceAtTokenEndpoint(t *testing.T) {
	ns := newNonceServer(t)
	client := &http.Client{Transport: &Transport{Base: ns.Client().Transport, Signer: MustSigner(t, jose.ES256)}}
	form := "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=r1"
	for i, wantHits := range []int{2, 3} { // the first call learns the nonce, the second uses it
		resp, err := client.Post(ns.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
		if got := ns.count("/token"); got != wantHits {
			t.Fatalf("call %d: server saw %d requests, want %d", i, got, wantHits)
		}
	}
	for _, b := range ns.bodies {
		if b != form {
			t.Fatalf("body %q, want %q on every attempt", b, form)
		}
	}
}

func TestTransportNonceAtResource(t *testing.T) {
	ns := newNonceServer(t)
	client := &http.Client{Transport: &Transport{
		Base: ns.Client().Transport, Signer: MustSigner(t, jose.EdDSA),
		Token: func() string { return ns.token },
	}}
	for i, wantHits := range []int{2, 3} {
		resp, err := client.Get(ns.URL + "/resource?page=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "resource" {
			t.Fatalf("call %d: %d %s (%s)", i, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
		if got := ns.count("/resource"); got != wantHits {
			t.Fatalf("call %d: server saw %d requests, want %d", i, got, wantHits)
		}
	}
	if ns.lastAuth != "DPoP "+ns.token {
		t.Fatalf("Authorization = %q", ns.lastAuth)
	}
}

func TestTransportRetriesOnce(t *testing.T) {
	ns := newNonceServer(t)
	ns.rotate = true
	client := &http.Client{Transport: &Transport{Base: ns.Client().Transport, Signer: MustSigner(t, jose.EdDSA)}}
	resp, err := client.Post(ns.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 400 || e.Error != CodeUseNonce {
		t.Fatalf("got %d %+v %v, want the server's use_dpop_nonce after one retry", resp.StatusCode, e, err)
	}
	if got := ns.count("/token"); got != 2 {
		t.Fatalf("server saw %d requests, want 2", got)
	}
}

// A body that cannot be replayed is not retried; the caller gets the
// server's answer with its body intact.
func TestTransportUnreplayableBody(t *testing.T) {
	ns := newNonceServer(t)
	client := &http.Client{Transport: &Transport{Base: ns.Client().Transport, Signer: MustSigner(t, jose.EdDSA)}}
	req, _ := http.NewRequest("POST", ns.URL+"/token", io.NopCloser(strings.NewReader("a=b")))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error":"use_dpop_nonce"`) {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if got := ns.count("/token"); got != 1 {
		t.Fatalf("server saw %d requests, want 1", got)
	}
}

// golang.org/x/oauth2 picks the Transport up from the context; client
// authentication in the Authorization header is left alone.
func TestTransportWithOAuth2(t *testing.T) {
	ns := newNonceServer(t)
	s := MustSigner(t, jose.ES384)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Transport: &Transport{Base: ns.Client().Transport, Signer: s}})
	cfg := oauth2.Config{ClientID: "agent-1", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: ns.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.Exchange(ctx, "code-1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != ns.token || tok.Type() != "DPoP" || tok.Extra("cnf_jkt") != s.JKT() {
		t.Fatalf("token = %+v (cnf_jkt %v), want %s bound to %s", tok, tok.Extra("cnf_jkt"), ns.token, s.JKT())
	}
	if !strings.HasPrefix(ns.lastAuth, "Basic ") {
		t.Fatalf("Authorization = %q, want the client's Basic credentials", ns.lastAuth)
	}
}

func TestTransportWithoutSigner(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://example.com/", nil)
	if _, err := (&Transport{}).RoundTrip(req); err == nil {
		t.Fatal("RoundTrip without a Signer succeeded")
	}
}
