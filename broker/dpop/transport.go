package dpop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// maxNonceOrigins bounds the nonces a Transport remembers; an agent talks
// to a handful of servers, so reaching it means something is odd and the
// memory is simply reset.
const maxNonceOrigins = 256

// Transport is an http.RoundTripper that adds a fresh DPoP proof to every
// request, and the access token as "Authorization: DPoP <token>" when Token
// returns one. It keeps the latest DPoP-Nonce of each origin (RFC 9449
// §8.2: servers may send one with any response) and, when a server answers
// use_dpop_nonce — 400 from an authorization server, 401 from a resource
// server — retries the request once with a new proof carrying the nonce.
// A request whose body cannot be replayed (GetBody nil) is not retried.
//
// Give it to golang.org/x/oauth2 through the context:
//
//	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: &dpop.Transport{Signer: s}})
type Transport struct {
	// Base makes the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Signer makes the proofs. Required.
	Signer *Signer
	// Token returns the access token to present, "" for none (e.g. at the
	// token endpoint, where client authentication may use Authorization).
	Token func() string

	mu     sync.Mutex
	nonces map[string]string // origin → latest DPoP-Nonce
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Signer == nil {
		closeBody(req)
		return nil, errors.New("dpop: Transport.Signer is nil")
	}
	var token string
	if t.Token != nil {
		token = t.Token()
	}
	origin := strings.ToLower(req.URL.Scheme + "://" + req.URL.Host)
	resp, err := t.send(req, req.Body, token, t.nonce(origin))
	if err != nil {
		return nil, err
	}
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		return resp, nil
	}
	t.setNonce(origin, nonce)
	if !asksForNonce(resp) || req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil // the caller still gets the server's answer
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.send(req, body, token, nonce)
}

// send makes one attempt with a fresh proof. It leaves req untouched, as
// the RoundTripper contract requires, and closes body on failure.
func (t *Transport) send(req *http.Request, body io.ReadCloser, token, nonce string) (*http.Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	proof, err := t.Signer.Proof(method, htuOf(req.URL), ProofOptions{AccessToken: token, Nonce: nonce})
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("dpop: proof for %s %s: %w", method, req.URL.Redacted(), err)
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("DPoP", proof)
	if token != "" {
		r.Header.Set("Authorization", "DPoP "+token)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

func (t *Transport) nonce(origin string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[origin]
}

func (t *Transport) setNonce(origin, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nonces == nil || len(t.nonces) >= maxNonceOrigins {
		t.nonces = make(map[string]string)
	}
	t.nonces[origin] = nonce
}

// asksForNonce reports whether resp is a use_dpop_nonce error: a 401 whose
// DPoP challenge says so (RFC 9449 §9), or a 400 whose OAuth error body
// does (§8). The 400 body is read and put back for the caller.
func asksForNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			if len(v) >= 5 && strings.EqualFold(v[:5], "DPoP ") && strings.Contains(v, `error="use_dpop_nonce"`) {
				return true
			}
		}
	case http.StatusBadRequest:
		head, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		if err != nil {
			return false
		}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(head, &e) == nil && e.Error == CodeUseNonce
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// htuOf is the proof's htu for u: scheme, authority and path, without
// query, fragment or userinfo.
func htuOf(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
