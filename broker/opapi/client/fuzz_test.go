package client

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// FuzzEventStream: whatever a server (or something in between) sends on
// the event stream, the client delivers events or asks for a resync; it
// never panics, and every event it delivers has a kind.
func FuzzEventStream(f *testing.F) {
	for _, s := range []string{
		"id: b-1\nevent: hello\ndata: {\"kind\":\"hello\"}\n\n",
		"id: b-2\nevent: request.submitted\ndata: {\"kind\":\"request.submitted\",\"request\":{\"id\":\"r\"}}\n\n",
		"event: resync\ndata: {}\n\n: keep-alive\n\n",
		"data: {\ndata: }\n\n", "event: x\ndata: [1,2\n\n", "\n\n\n", "id:\nevent:\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		c := &Client{opts: Options{Logger: nil}, log: discard}
		ch := make(chan broker.Event, 1024)
		srv := &fakeStream{body: stream}
		c.stream = &http.Client{Transport: srv}
		c.http = c.stream
		c.base = "http://writ.test"
		c.token = "t"
		c.tokenExp = time.Now().Add(time.Hour)
		lastID := ""
		_, _ = c.read(context.Background(), &lastID, ch, func() {}, func() {})
		close(ch)
		// At most one event per blank-line-terminated block, and only
		// complete blocks are delivered. A line ends at CRLF, LF or a lone
		// CR (the event-stream format), so "data:0\n\r" is one block.
		lines := strings.ReplaceAll(strings.ReplaceAll(stream, "\r\n", "\n"), "\r", "\n")
		blocks := strings.Count(lines, "\n\n")
		if n := len(ch); n > blocks {
			t.Fatalf("%d events from %d blocks", n, blocks)
		}
	})
}

type fakeStream struct{ body string }

func (f *fakeStream) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(strings.NewReader(f.body)), Request: r}, nil
}
