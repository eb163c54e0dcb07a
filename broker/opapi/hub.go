package opapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/broker"
)

// DefaultRingSize is how many recent events the stream keeps for clients
// that reconnect.
const DefaultRingSize = 4096

// frame is one event, encoded once for every client.
type frame struct {
	seq  uint64
	kind broker.EventKind
	data []byte
}

// hub numbers the broker's events and keeps the most recent in a ring.
// Clients read from the ring by sequence number, so each gets every event
// once, in order, however it is scheduled, and a client that falls out of
// the ring is told to resync rather than silently skipping events.
type hub struct {
	// boot identifies this process's numbering: ids from an earlier run
	// cannot be resumed.
	boot string

	mu   sync.Mutex
	ring []frame
	next uint64        // sequence number of the next event; the first is 1
	wake chan struct{} // closed and replaced on every event
}

func newHub(size int) *hub {
	if size <= 0 {
		size = DefaultRingSize
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	// Hex: the boot never contains the '-' that separates it from the sequence.
	return &hub{boot: hex.EncodeToString(b), ring: make([]frame, size), next: 1, wake: make(chan struct{})}
}

// add appends an event to the ring and wakes the readers.
func (h *hub) add(e broker.Event) {
	data, err := json.Marshal(WireEvent(e))
	if err != nil {
		data, e.Kind = []byte(`{"kind":"resync"}`), broker.EventResync
	}
	h.mu.Lock()
	h.ring[h.next%uint64(len(h.ring))] = frame{seq: h.next, kind: e.Kind, data: data}
	h.next++
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// read returns the frames after seq, or gap when some of them have left
// the ring, and a channel closed when more arrive.
func (h *hub) read(after uint64, limit int) (out []frame, gap bool, head uint64, wake <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	head = h.next - 1
	oldest := uint64(1)
	if h.next > uint64(len(h.ring)) {
		oldest = h.next - uint64(len(h.ring))
	}
	if after > head {
		return nil, true, head, h.wake
	}
	if after+1 < oldest {
		return nil, true, head, h.wake
	}
	for s := after + 1; s <= head && len(out) < limit; s++ {
		out = append(out, h.ring[s%uint64(len(h.ring))])
	}
	return out, false, head, h.wake
}

// run feeds the hub from the broker until ctx ends.
func (h *hub) run(ctx context.Context, events <-chan broker.Event) {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			h.add(e)
		case <-ctx.Done():
			return
		}
	}
}

// eventID is the SSE id of seq: the boot and the sequence number.
func (h *hub) eventID(seq uint64) string { return h.boot + "-" + strconv.FormatUint(seq, 10) }

// parseEventID reads a Last-Event-ID: the sequence number when it is from
// this process, ok false otherwise.
func (h *hub) parseEventID(id string) (uint64, bool) {
	id = strings.TrimSpace(id)
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	boot, seq := id[:i], id[i+1:]
	if boot != h.boot || len(seq) > 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// serveEvents is GET /v1/events: the live stream as Server-Sent Events.
// A client without Last-Event-ID starts from now, after a "hello" event
// naming the current position; one with an id from this process gets
// everything after it; one whose id is unknown, from another run or no
// longer in the ring gets "resync" and must reload its snapshot.
//
// The stream ends when the operator token does: the client exchanges its
// ID token again and resumes, so an operator who lost the approver group
// stops seeing events within one token lifetime.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, c *caller) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: broker.EINTERNAL, Description: "streaming unsupported", Code: broker.EINTERNAL})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	_, _, head, _ := s.hub.read(0, 0)
	after := head
	last := r.Header.Get("Last-Event-ID")
	switch seq, ok := s.hub.parseEventID(last); {
	case last == "":
		writeFrame(w, s.hub.eventID(head), "hello", []byte(`{"kind":"hello"}`))
	case ok:
		after = seq
	default:
		writeFrame(w, s.hub.eventID(head), string(broker.EventResync), []byte(`{"kind":"resync"}`))
	}
	fl.Flush()
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	end := time.NewTimer(time.Unix(c.claims.Expiry, 0).Sub(s.now()))
	defer end.Stop()
	for {
		frames, gap, head, wake := s.hub.read(after, 256)
		if gap {
			writeFrame(w, s.hub.eventID(head), string(broker.EventResync), []byte(`{"kind":"resync"}`))
			after = head
			fl.Flush()
			continue
		}
		for _, f := range frames {
			writeFrame(w, s.hub.eventID(f.seq), string(f.kind), f.data)
			after = f.seq
		}
		if len(frames) > 0 {
			fl.Flush()
			continue
		}
		select {
		case <-wake:
		case <-beat.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func writeFrame(w http.ResponseWriter, id, event string, data []byte) {
	_, _ = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, event, data)
}
