package ssf

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/writhq/writ/wire/ssfwire"
)

// streamRecord is what the store keeps of a stream (RecordSSFStream).
type streamRecord struct {
	Config    ssfwire.StreamConfig `json:"config"`
	Receiver  string               `json:"receiver"`
	Status    string               `json:"status"`
	Reason    string               `json:"reason,omitempty"`
	CreatedAt time.Time            `json:"created_at"`
}

// cursorRecord is a stream's durable delivery position (RecordSSFCursor):
// every feed signal with Seq ≤ Acked has been delivered and acknowledged.
type cursorRecord struct {
	Acked uint64 `json:"acked"`
}

// maxControl bounds the verification and stream-updated events waiting on
// one stream; the oldest is dropped first.
const maxControl = 16

// maxAckedAbove bounds the acknowledgements kept above the cursor: a
// hundred full poll answers acknowledged while an earlier SET is held.
// Acknowledgements beyond it are forgotten, and those SETs sent again (at
// least once), so the bound costs a misbehaving receiver redeliveries, not
// writ memory.
const maxAckedAbove = 10_000

// stream is the live state of one stream. mu guards everything below it.
type stream struct {
	id       string
	receiver string // immutable: the receiver that owns the stream
	tag      string // immutable: audienceTag of the stream's aud, in its feed SETs' jtis

	mu  sync.Mutex
	rec streamRecord
	// acked is the cursor; ackedAbove holds feed seqs acknowledged out of
	// order beyond it, folded into the cursor by the next scan.
	acked      uint64
	ackedAbove map[uint64]bool
	// dirty says the cursor moved since it was last written.
	dirty bool
	// control holds verification and stream-updated events, which are not
	// part of the feed and live only in memory.
	control []controlEvent
	// changed is closed and replaced when control events arrive, the status
	// changes or the stream is deleted, to wake a waiting poll or pusher.
	changed      chan struct{}
	deleted      bool
	lastActivity time.Time
	lastVerify   time.Time
	// Push delivery state, for the console and metrics.
	lastDelivery time.Time
	lastError    string
	failures     int
	stopPush     func() // cancels the push worker; nil when none runs
}

// controlEvent is an event that is about the stream rather than the feed.
type controlEvent struct {
	jti  string
	typ  string
	body any
}

func newStream(rec streamRecord, acked uint64, now time.Time) *stream {
	return &stream{id: rec.Config.StreamID, receiver: rec.Receiver, tag: audienceTag(rec.Config.Audience), rec: rec, acked: acked, ackedAbove: map[uint64]bool{},
		changed: make(chan struct{}), lastActivity: now}
}

// wake tells waiters something changed. Call with mu held.
func (s *stream) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// addControl queues a control event, dropping the oldest beyond the bound.
// Call with mu held.
func (s *stream) addControl(ev controlEvent) {
	if len(s.control) >= maxControl {
		s.control = append(s.control[:0], s.control[1:]...)
	}
	s.control = append(s.control, ev)
	s.wake()
}

// ack records the acknowledgement of jti. Call with mu held.
func (s *stream) ack(jti string, head uint64) {
	if seq, ok := s.parseFeedJTI(jti); ok {
		if seq > s.acked && seq <= head && len(s.ackedAbove) < maxAckedAbove {
			s.ackedAbove[seq] = true
		}
		return
	}
	for i, c := range s.control {
		if c.jti == jti {
			s.control = append(s.control[:i], s.control[i+1:]...)
			return
		}
	}
}

// delivers reports whether the stream carries events of type typ.
func (s *stream) delivers(typ string) bool {
	for _, t := range s.rec.Config.EventsDelivered {
		if t == typ {
			return true
		}
	}
	return false
}

// snapshot returns a copy of the configuration and status.
func (s *stream) snapshot() streamRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	r.Config.EventsSupported = append([]string(nil), r.Config.EventsSupported...)
	r.Config.EventsRequested = append([]string(nil), r.Config.EventsRequested...)
	r.Config.EventsDelivered = append([]string(nil), r.Config.EventsDelivered...)
	return r
}

func encodeRecord(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode stream record: %w", err)
	}
	return b, nil
}
