package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWireRequestIsTheFormNetHTTPSends: the hand-written request reaches
// a net/http server as the same POST the net/http client sends (path,
// Host, content type, headers, form), on one connection reused for every
// call, and the answer's body is read whole each time.
func TestWireRequestIsTheFormNetHTTPSends(t *testing.T) {
	type seen struct {
		method, path, host, ctype, auth, remote string
		form                                    url.Values
	}
	got := make(chan seen, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		got <- seen{r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.RemoteAddr, r.PostForm}
		if r.PostForm.Get("token") == "big" { // beyond the server's buffer: chunked
			_, _ = io.WriteString(w, `{"active":true,"pad":"`+strings.Repeat("x", 8000)+`"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"scope":"a b"}`)
	}))
	defer ts.Close()
	wt, ok := newWireTarget(ts.URL+"/x/introspect", "Authorization", "Bearer abc")
	if !ok {
		t.Fatal("an http endpoint was not taken")
	}
	c := wt.conn(time.Minute)
	defer c.close()
	ctx := context.Background()
	token := "a.b+c/d=e"
	var remote string
	for i, tok := range []string{token, token, "big", token} {
		status, body, err := c.post(ctx, []byte("token="+url.QueryEscape(tok)+"&client_assertion="), []byte("x.y.z"))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if err := introspectionAnswer(wt.endpoint, status, body); err != nil {
			t.Fatalf("call %d: %v (%d %q)", i, err, status, body)
		}
		if tok == "big" && len(body) < 8000 {
			t.Fatalf("call %d: chunked answer read as %d bytes", i, len(body))
		}
		s := <-got
		want := url.Values{"token": {tok}, "client_assertion": {"x.y.z"}}
		if s.method != http.MethodPost || s.path != "/x/introspect" || s.host != strings.TrimPrefix(ts.URL, "http://") ||
			s.ctype != "application/x-www-form-urlencoded" || s.auth != "Bearer abc" || s.form.Encode() != want.Encode() {
			t.Fatalf("call %d: the server saw %+v", i, s)
		}
		if i > 0 && s.remote != remote {
			t.Fatalf("call %d: from %s, not the kept-alive connection %s", i, s.remote, remote)
		}
		remote = s.remote
	}
}

// TestWireAnswers reads answers the way servers frame them, and refuses
// what is not HTTP/1.1.
func TestWireAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		status   int
		body     string
		keep     bool
		bad      bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true, false},
		{"length, other case", "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}", 429, "{}", true, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n", 200, "abcde", true, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true, false},
		{"to the end", "HTTP/1.1 200 OK\r\n\r\nall of it", 200, "all of it", false, false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, "", false, true},
		{"not http", "SSH-2.0-x\r\n\r\n", 0, "", false, true},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, "", false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", false, true},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", false, true},
		{"other coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "", false, true},
		{"header without colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", 0, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &wireConn{br: bufio.NewReader(strings.NewReader(tc.in))}
			status, keep, err := c.readAnswer()
			if tc.bad {
				if err == nil {
					t.Fatalf("read %d %q, want an error", status, c.body)
				}
				return
			}
			if err != nil || status != tc.status || string(c.body) != tc.body || keep != tc.keep {
				t.Fatalf("got %d %q keep=%v %v, want %d %q keep=%v", status, c.body, keep, err, tc.status, tc.body, tc.keep)
			}
		})
	}
}

func TestIntrospectionAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // "" ok; "throttled"; else a substring of the error
	}{
		{"writ active", 200, `{"active":true,"scope":"x"}`, ""},
		{"only active", 200, `{"active":true}`, ""},
		{"active later", 200, `{"scope":"x","active":true}`, ""},
		{"spaced", 200, `{ "active" : true }`, ""},
		{"inactive", 200, `{"active":false}`, "not active"},
		{"prefix of another member", 200, `{"active":trueish}`, "not active"},
		{"no active", 200, `{}`, "not active"},
		{"not json", 200, `active`, "not active"},
		{"slow down", 429, `{"error":"slow_down","error_description":"too often"}`, "throttled"},
		{"refused", 401, `{"error":"invalid_client","error_description":"who"}`, "401 invalid_client: who"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := introspectionAnswer("E", tc.status, []byte(tc.body))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want active", err)
			case tc.want == "throttled" && !errors.Is(err, errThrottled):
				t.Fatalf("got %v, want slow_down", err)
			case tc.want != "" && tc.want != "throttled" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestWireEndsWithItsContext: a call waiting on a server that never
// answers returns once its context ends.
func TestWireEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	wt, _ := newWireTarget("http://" + ln.Addr().String() + "/introspect")
	c := wt.conn(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.post(ctx, []byte("token=x"))
		done <- err
	}()
	silent := <-accepted // the request is sent; no answer comes
	defer silent.Close()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a call with no answer returned no error")
	}
	if c.conn != nil {
		t.Fatal("a failed call kept its connection")
	}
}

func TestWireTargetTakesOnlyPlainHTTP(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1/x", "http://u:p@127.0.0.1/x", "http:///x", "::"} {
		if _, ok := newWireTarget(u); ok {
			t.Errorf("%s was taken", u)
		}
	}
	wt, ok := newWireTarget("http://localhost/i?q=1")
	if !ok || wt.addr != "localhost:80" || !strings.HasPrefix(string(wt.head), "POST /i?q=1 HTTP/1.1\r\nHost: localhost\r\n") {
		t.Fatalf("got %v %q %q", ok, wt.addr, wt.head)
	}
}

// BenchmarkWirePost is one introspection call of the generator against a
// loopback peer that answers a fixed 200 without parsing: the load
// process's own cost per call; with -benchmem, its allocations (none).
func BenchmarkWirePost(b *testing.B) {
	wt, _ := newWireTarget(fixedPeer(b)+"/introspect", "Authorization", "Bearer "+strings.Repeat("t", 600))
	c := wt.conn(time.Minute)
	defer c.close()
	form := []byte("token=" + strings.Repeat("a", 1000))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		status, answer, err := c.post(ctx, form)
		if err != nil {
			b.Fatal(err)
		}
		if err := introspectionAnswer(wt.endpoint, status, answer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetHTTPPost is the same call through net/http and post, as
// the generator made it before: the difference is what the wire client
// saves.
func BenchmarkNetHTTPPost(b *testing.B) {
	endpoint := fixedPeer(b) + "/introspect"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	bearer := "Bearer " + strings.Repeat("t", 600)
	token := strings.Repeat("a", 1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a, err := post(ctx, hc, endpoint, url.Values{"token": {token}}, "Authorization", bearer)
		if err != nil || a.Active == nil || !*a.Active {
			b.Fatal(err)
		}
	}
}

// fixedPeer serves, on loopback until the benchmark ends, a fixed 200
// introspection answer to every request on each connection, reading the
// requests without parsing more than their framing.
func fixedPeer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := `{"active":true,"scope":"x","client_id":"agent"}`
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go answerEach(conn, answer)
		}
	}()
	return "http://" + ln.Addr().String()
}

func answerEach(conn net.Conn, answer []byte) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for { // the head up to the blank line, then Content-Length bytes
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if name := "content-length:"; len(line) > len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(name):])))
			}
			if len(line) == 2 {
				break
			}
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := conn.Write(answer); err != nil {
			return
		}
	}
}
