package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
)

// staleAfter is how long the stream may stay silent before the client
// takes the connection for dead: the server sends a keep-alive every 15 s.
const staleAfter = 45 * time.Second

// Subscribe follows the server's event stream until ctx ends, and returns
// once the stream is open (or after a few seconds of trying), so a
// snapshot loaded afterwards misses nothing. When the connection drops it
// reconnects with Last-Event-ID and gets exactly the events it missed;
// when the server cannot say (it restarted, or the gap is longer than its
// ring) an EventResync tells the console to reload.
func (c *Client) Subscribe(ctx context.Context) <-chan broker.Event {
	ch := make(chan broker.Event, 4096)
	ready := make(chan struct{})
	go c.follow(ctx, ch, ready)
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return ch
}

// follow is the stream's loop: connect, read, reconnect.
func (c *Client) follow(ctx context.Context, ch chan<- broker.Event, ready chan struct{}) {
	defer close(ch)
	var once sync.Once
	markReady := func() { once.Do(func() { close(ready) }) }
	lastID := ""
	wait := c.opts.Backoff
	connected := false
	for ctx.Err() == nil {
		got, err := c.read(ctx, &lastID, ch, func() {
			connected = true
			wait = c.opts.Backoff
			c.report(true, nil)
		}, markReady)
		if ctx.Err() != nil {
			return
		}
		if connected || !got {
			c.report(false, err)
		}
		connected = false
		if lastID == "" {
			// Never connected: the console's snapshot cannot be trusted to
			// be current once we do, so ask it to reload then.
			lastID = "-"
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (c *Client) report(connected bool, err error) {
	if c.opts.OnConnection != nil {
		c.opts.OnConnection(connected, err)
	}
}

// read makes one connection and reads it until it fails. It reports
// whether any event arrived.
func (c *Client) read(ctx context.Context, lastID *string, ch chan<- broker.Event, onOpen, markReady func()) (bool, error) {
	if err := c.ensureToken(ctx); err != nil {
		return false, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, c.base+opapi.PathEvents, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return false, &UnreachableError{Server: c.base, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := decode(resp, nil)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			c.mu.Lock()
			c.token = "" // exchange again on the next attempt
			c.mu.Unlock()
		}
		if err == nil {
			err = fmt.Errorf("the event stream answered %s", resp.Status)
		}
		return false, err
	}
	onOpen()
	var lastRead atomic.Int64
	lastRead.Store(time.Now().UnixNano())
	go func() {
		t := time.NewTicker(staleAfter / 3)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastRead.Load())) > staleAfter {
					cancel()
					return
				}
			}
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var id, event string
	var data strings.Builder
	got := false
	for sc.Scan() {
		lastRead.Store(time.Now().UnixNano())
		line := sc.Text()
		switch {
		case line == "":
			if event == "" && data.Len() == 0 {
				continue
			}
			got = true
			if err := c.dispatch(ctx, id, event, data.String(), lastID, ch, markReady); err != nil {
				return got, err
			}
			id, event = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// a comment: the keep-alive
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	err = sc.Err()
	if err == nil {
		err = errors.New("the server closed the event stream")
	}
	return got, err
}

// dispatch handles one SSE event.
func (c *Client) dispatch(ctx context.Context, id, event, data string, lastID *string, ch chan<- broker.Event, markReady func()) error {
	send := func(e broker.Event) error {
		select {
		case ch <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		if id != "" {
			*lastID = id
		}
	}()
	switch event {
	case "hello":
		markReady()
		return nil
	case string(broker.EventResync):
		markReady()
		return send(broker.Event{Kind: broker.EventResync, At: time.Now()})
	}
	var e opapi.Event
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		// Something was lost in between: the console must reload.
		c.log.Warn("unreadable event from the server; asking the console to reload", "event", event, "err", err)
		return send(broker.Event{Kind: broker.EventResync, At: time.Now()})
	}
	if e.Kind == broker.EventStoreHealth && e.Store != nil {
		c.mu.Lock()
		c.store = *e.Store
		c.mu.Unlock()
	}
	return send(e.BrokerEvent())
}
