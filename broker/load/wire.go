package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// wireTarget is an endpoint that the measured loops call over plain
// HTTP/1.1 on a keep-alive connection of their own, written and read by
// hand: net/http's client spends about as much CPU per call as writ's
// server does to answer it (two goroutines and their hand-offs per
// connection, a Request, a Response and their headers allocated per
// call), and on a shared two-core machine that CPU is taken from the
// server and shows in the tail. What reaches the server is the same: a
// POST with the form content type, Host, Content-Length and any extra
// headers, one request at a time on a persistent connection.
type wireTarget struct {
	endpoint string // as discovered, for errors
	addr     string // host:port to dial
	// head is the request line and the fixed headers, up to and
	// including "Content-Length: ".
	head []byte
}

// newWireTarget prepares requests to endpoint, with extra headers (name,
// value, ...). ok is false for an endpoint that is not plain http: the
// caller then uses net/http.
func newWireTarget(endpoint string, header ...string) (*wireTarget, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return nil, false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	h := []byte("POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: writ-bench\r\nContent-Type: application/x-www-form-urlencoded\r\n")
	for i := 0; i+1 < len(header); i += 2 {
		h = append(h, header[i]+": "+header[i+1]+"\r\n"...)
	}
	h = append(h, "Content-Length: "...)
	return &wireTarget{endpoint: endpoint, addr: addr, head: h}, true
}

// wireConn is one worker's connection to a wireTarget, with the buffers
// every call reuses. It is not safe for concurrent use.
type wireConn struct {
	t *wireTarget
	// idle bounds how long one call may wait on the server.
	idle time.Duration
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
	stop func() bool // unregisters the context's hook
	// renew is when the connection's deadline is next moved on.
	renew time.Time
}

// maxWireBody bounds an answer read, as post's LimitReader does.
const maxWireBody = 1 << 20

func (t *wireTarget) conn(idle time.Duration) *wireConn {
	return &wireConn{t: t, idle: idle}
}

// close ends the connection, if any; the next call dials again.
func (c *wireConn) close() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

func (c *wireConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: c.idle}
	conn, err := d.DialContext(ctx, "tcp", c.t.addr)
	if err != nil {
		return fmt.Errorf("%s: %w", c.t.endpoint, err)
	}
	c.conn, c.renew = conn, time.Time{}
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 4<<10)
	} else {
		c.br.Reset(conn)
	}
	// Ending ctx unblocks a call waiting on the server; one hook per
	// connection, not a deadline set per call.
	c.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// post sends the form body parts (already form-encoded, concatenated in
// order) and returns the status and the answer's body, which is valid
// until the next call. Any failure closes the connection.
func (c *wireConn) post(ctx context.Context, parts ...[]byte) (int, []byte, error) {
	if c.conn == nil {
		if err := c.dial(ctx); err != nil {
			return 0, nil, err
		}
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	req := append(c.req[:0], c.t.head...)
	req = strconv.AppendInt(req, int64(n), 10)
	req = append(req, "\r\n\r\n"...)
	for _, p := range parts {
		req = append(req, p...)
	}
	c.req = req
	// A call may take at least c.idle/2: the deadline is set c.idle
	// ahead and moved on only when half of that has passed, not per call.
	if now := time.Now(); now.After(c.renew) {
		_ = c.conn.SetDeadline(now.Add(c.idle))
		c.renew = now.Add(c.idle / 2)
		if err := ctx.Err(); err != nil { // ended before the renewal: the hook's deadline is lost
			c.close()
			return 0, nil, err
		}
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, nil, fmt.Errorf("%s: write: %w", c.t.endpoint, err)
	}
	status, keep, err := c.readAnswer()
	if err != nil {
		c.close()
		return 0, nil, fmt.Errorf("%s: read answer: %w", c.t.endpoint, err)
	}
	if !keep {
		c.close()
	}
	return status, c.body, nil
}

var errWireFraming = errors.New("malformed HTTP/1.1 answer")

// readAnswer reads one HTTP/1.1 response into c.body: its status, and
// whether the connection may carry another request.
func (c *wireConn) readAnswer() (status int, keep bool, err error) {
	line, err := c.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, errWireFraming
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errWireFraming
	}
	keep = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		line, err = c.line()
		if err != nil {
			return 0, false, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errWireFraming
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, errWireFraming
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
			if !chunked {
				return 0, false, errWireFraming
			}
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case status == 204 || status == 304: // never a body (RFC 9112 §6.3)
	case chunked:
		err = c.readChunked()
	case length > maxWireBody:
		err = fmt.Errorf("an answer of %d bytes", length)
	case length >= 0:
		c.body = grow(c.body, int(length))
		_, err = io.ReadFull(c.br, c.body)
	default: // the body runs to the end of the connection
		keep = false
		var b bytes.Buffer
		_, err = b.ReadFrom(io.LimitReader(c.br, maxWireBody))
		c.body = append(c.body, b.Bytes()...)
	}
	return status, keep, err
}

func (c *wireConn) readChunked() error {
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || int64(len(c.body))+n > maxWireBody {
			return errWireFraming
		}
		if n == 0 {
			for { // trailers, up to the blank line
				if line, err = c.line(); err != nil || len(line) == 0 {
					return err
				}
			}
		}
		at := len(c.body)
		c.body = grow(c.body, at+int(n))
		if _, err := io.ReadFull(c.br, c.body[at:]); err != nil {
			return err
		}
		if line, err = c.line(); err != nil || len(line) != 0 {
			return errWireFraming
		}
	}
}

// line reads a line without its CRLF; it is valid until the next read.
func (c *wireConn) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errWireFraming
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// grow returns b resized to n bytes, reusing its array when it is big
// enough.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)
}

// activePrefix is how writ (and oidc-provider) begin the answer about an
// active token: the first member decides it, with no JSON decoding.
var activePrefix = []byte(`{"active":true`)

// introspectionAnswer judges an introspection answer: nil for a 200 that
// says the token is active; errThrottled for slow_down; an error naming
// the OAuth error otherwise, as post does.
func introspectionAnswer(endpoint string, status int, body []byte) error {
	if status == 200 && bytes.HasPrefix(body, activePrefix) && len(body) > len(activePrefix) &&
		(body[len(activePrefix)] == ',' || body[len(activePrefix)] == '}') {
		return nil
	}
	var a oauthAnswer
	_ = json.Unmarshal(body, &a)
	switch {
	case status == 200 && a.Active != nil && *a.Active:
		return nil
	case status == 200:
		return fmt.Errorf("%s: a live token is not active", endpoint)
	case a.Error == "slow_down":
		return fmt.Errorf("%w: %s", errThrottled, a.Description)
	}
	return fmt.Errorf("%s: %d %s: %s", endpoint, status, a.Error, a.Description)
}
