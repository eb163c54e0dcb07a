package ssf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire/ssfwire"
)

// Broker is what the transmitter needs of writ's domain; *broker.Service
// implements it.
type Broker interface {
	Issuer() string
	Now() time.Time
	// Signals returns up to max feed signals after seq, in order.
	Signals(ctx context.Context, after uint64, max int) ([]broker.Signal, error)
	// WaitSignals blocks until the feed holds a signal after seq or ctx ends.
	WaitSignals(ctx context.Context, after uint64) bool
	LastSignalSeq() uint64
	// Sign signs claims with the issuer's current key and the given typ.
	Sign(typ string, claims any) (string, error)
	ViewRecords(ctx context.Context, fn func(broker.RecordReader) error) error
	UpdateRecords(ctx context.Context, fn func(broker.RecordTx) error) error
	ReportUses(ctx context.Context, r broker.UseReport) error
	MaxTokenLifetime() time.Duration
}

var _ Broker = (*broker.Service)(nil)

// Options configure a Transmitter. Authenticate is required; the rest have
// defaults.
type Options struct {
	// PublicURL is the base URL the endpoints are published under; the
	// broker's issuer when empty. Its path, if any, prefixes every route.
	PublicURL string
	// JWKSURI is published as jwks_uri; PublicURL + "/jwks" when empty.
	JWKSURI string
	// Authenticate identifies the receiver making a management, poll or
	// usage request, or fails (401; a *broker.Error with EFORBIDDEN gives
	// 403). The receiver id becomes the aud of its streams' SETs. For an
	// OAuth access token, RequiredScopes(r) names the scopes the route
	// accepts; errors with reason invalid_token or insufficient_scope are
	// answered as RFC 6750 §3 says.
	Authenticate func(r *http.Request) (receiverID string, err error)
	// PollTimeout is how long a long-poll waits for an event before it
	// answers with none (default 15s). An empty answer is still contact: a
	// guard counts it as proof the feed is alive.
	PollTimeout time.Duration
	// MaxEvents caps the SETs in one poll answer (default 100).
	MaxEvents int
	// PushClient sends pushes; default: Egress.Client(10s), which dials
	// only public addresses or those Egress allows, and follows no
	// redirects. A client given here must do its own checking.
	PushClient *http.Client
	// CheckEndpoint vets a push endpoint_url when a stream is created or
	// changed; default: Egress.CheckURL (https, no forbidden address
	// written literally). The transmitter POSTs to whatever it allows, so
	// keep it strict.
	CheckEndpoint func(u *url.URL) error
	// Egress is where push may connect beyond public addresses: the
	// configuration's push allow-list.
	Egress Egress
	// MinBackoff and MaxBackoff bound the wait between failed pushes
	// (defaults 200ms and 30s); each failure doubles it, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// PushKeepalive, when set, sends an unrequested verification event on
	// a push stream that has carried nothing for that long, so the receiver
	// can tell a quiet feed from a broken one.
	PushKeepalive time.Duration
	// InactivityTimeout deletes a poll stream that has not been polled or
	// managed for that long (default 24h), so streams of resource servers
	// that went away do not pile up.
	InactivityTimeout time.Duration
	// MinVerificationInterval is the least time between verification
	// requests on one stream (default 1s); faster ones get 429.
	MinVerificationInterval time.Duration
	// Backfill is how far back a new stream starts (default: the broker's
	// longest token lifetime plus 5 minutes), so a late subscriber learns of
	// every revocation that can still matter.
	Backfill time.Duration
	// MaxStreamsPerReceiver bounds one receiver's streams (default
	// DefaultMaxStreamsPerReceiver). A resource server run as many replicas
	// holds a stream per replica, all under its one receiver id.
	MaxStreamsPerReceiver int
	// FlushInterval is how often moved cursors are written (default 200ms).
	// Delivery is at least once, so a crash between flushes only repeats
	// SETs, under the same jti.
	FlushInterval time.Duration
	// Logger receives operational logs; slog.Default() when nil.
	Logger *slog.Logger
	// Serves, when set, says whether a receiver serves a resource (an
	// audience). Signals about one grant or token then reach only the
	// receivers serving its resource, so a resource server does not learn
	// other resources' grants or the operator's reasons for them; agent-wide
	// and global revocations reach everyone. Nil: every receiver gets every
	// signal.
	Serves func(receiverID, resource string) bool
}

// DefaultMaxStreamsPerReceiver is how many streams one receiver may hold
// unless configured: room for a resource server of 1,000 replicas. A
// stream costs about 1.5 KiB idle and some 40 KiB while a long poll waits
// on it (connection, buffers, goroutines); a receiver that acknowledges out of order can make one hold up
// to maxAckedAbove acknowledgements (≈300 KiB) and maxControl control
// events (≤ 16 KiB), so the worst one receiver can make writ hold is about
// 350 MiB, less than the 256 streams of 100,000 acknowledgements each that
// the earlier bound allowed.
const DefaultMaxStreamsPerReceiver = 1024

// Transmitter is writ's SSF transmitter: an http.Handler for the
// discovery, management, poll and usage endpoints, and, while Run runs, the
// push workers and the cursor writer.
type Transmitter struct {
	b        Broker
	opts     Options
	issuer   string
	base     string // PublicURL without a trailing slash
	basePath string
	log      *slog.Logger
	mux      *http.ServeMux
	patterns []string
	stats    stats
	fan      fanout
	wake     feedWake

	mu      sync.Mutex // guards streams; never taken while holding a stream's mu
	streams map[string]*stream

	runMu   sync.Mutex
	runCtx  context.Context // non-nil while Run runs
	workers sync.WaitGroup  // push workers; Add only under runMu with runCtx set
}

// New loads the streams kept in the store and returns a transmitter.
func New(ctx context.Context, b Broker, opts Options) (*Transmitter, error) {
	if b == nil {
		return nil, errors.New("ssf: no broker")
	}
	if opts.Authenticate == nil {
		return nil, errors.New("ssf: Options.Authenticate is required: receivers must be authenticated")
	}
	if opts.PublicURL == "" {
		opts.PublicURL = b.Issuer()
	}
	u, err := url.Parse(opts.PublicURL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ssf: public URL %q must be an absolute URL without query or fragment", opts.PublicURL)
	}
	base := strings.TrimSuffix(opts.PublicURL, "/")
	if opts.JWKSURI == "" {
		opts.JWKSURI = base + "/jwks"
	}
	setDefault(&opts.PollTimeout, 15*time.Second)
	setDefault(&opts.MinBackoff, 200*time.Millisecond)
	setDefault(&opts.MaxBackoff, 30*time.Second)
	setDefault(&opts.InactivityTimeout, 24*time.Hour)
	setDefault(&opts.MinVerificationInterval, time.Second)
	setDefault(&opts.Backfill, b.MaxTokenLifetime()+5*time.Minute)
	setDefault(&opts.FlushInterval, 200*time.Millisecond)
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 100
	}
	if opts.MaxStreamsPerReceiver <= 0 {
		opts.MaxStreamsPerReceiver = DefaultMaxStreamsPerReceiver
	}
	if opts.PushClient == nil {
		opts.PushClient = opts.Egress.Client(10 * time.Second)
	}
	if opts.CheckEndpoint == nil {
		opts.CheckEndpoint = opts.Egress.CheckURL
	}
	t := &Transmitter{
		b: b, opts: opts, issuer: b.Issuer(), base: base, basePath: strings.TrimSuffix(u.EscapedPath(), "/"),
		log: opts.Logger, streams: make(map[string]*stream),
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.log = t.log.With("component", "ssf")
	t.fan.startAt(b.LastSignalSeq())
	if err := t.load(ctx); err != nil {
		return nil, err
	}
	t.routes()
	return t, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// RequireHTTPS is the default push endpoint check: https only.
func RequireHTTPS(u *url.URL) error {
	if u.Scheme != "https" {
		return errors.New("endpoint_url must use https")
	}
	return nil
}

// load reads every stream and cursor from the store.
func (t *Transmitter) load(ctx context.Context) error {
	now := t.b.Now()
	return t.b.ViewRecords(ctx, func(tx broker.RecordReader) error {
		return tx.ForEachRecord(broker.RecordSSFStream, func(id string, value []byte) error {
			var rec streamRecord
			if err := json.Unmarshal(value, &rec); err != nil || rec.Config.StreamID != id {
				t.log.Error("skipping unreadable stream record", "stream", id, "err", err)
				return nil
			}
			var cur cursorRecord
			if b, err := tx.Record(broker.RecordSSFCursor, id); err == nil {
				if err := json.Unmarshal(b, &cur); err != nil {
					return fmt.Errorf("ssf: cursor of stream %s: %w", id, err)
				}
			} else if broker.ErrorCode(err) != broker.ENOTFOUND {
				return err
			}
			// A restart is not the receiver's inactivity: the clock starts again.
			t.streams[id] = newStream(rec, cur.Acked, now)
			return nil
		})
	})
}

// Run delivers pushes and writes moved cursors until ctx ends, then stops
// every push worker and writes the cursors a last time. Poll delivery and
// the management API work without it, but acknowledgements become durable
// only while it runs.
func (t *Transmitter) Run(ctx context.Context) error {
	t.runMu.Lock()
	if t.runCtx != nil {
		t.runMu.Unlock()
		return errors.New("ssf: Run is already running")
	}
	t.runCtx = ctx
	t.runMu.Unlock()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t.watchFeed(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-watched
	}()
	for _, s := range t.list() {
		s.mu.Lock()
		t.startPush(s)
		s.mu.Unlock()
	}

	flush := time.NewTicker(t.opts.FlushInterval)
	defer flush.Stop()
	sweepEvery := min(t.opts.InactivityTimeout/10, time.Minute)
	sweep := time.NewTicker(max(sweepEvery, time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			t.runMu.Lock()
			t.runCtx = nil
			t.runMu.Unlock()
			for _, s := range t.list() {
				s.mu.Lock()
				if s.stopPush != nil {
					s.stopPush()
					s.stopPush = nil
				}
				s.mu.Unlock()
			}
			t.workers.Wait()
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := t.flushCursors(fctx); err != nil {
				t.log.Error("write stream cursors at shutdown", "err", err)
			}
			return nil
		case <-flush.C:
			if err := t.flushCursors(ctx); err != nil && ctx.Err() == nil {
				t.log.Error("write stream cursors", "err", err)
			}
		case <-sweep.C:
			t.sweepInactive(ctx)
		}
	}
}

// flushCursors writes the cursors that moved, in one transaction.
func (t *Transmitter) flushCursors(ctx context.Context) error {
	type pending struct {
		s     *stream
		acked uint64
	}
	var dirty []pending
	for _, s := range t.list() {
		s.mu.Lock()
		if s.dirty && !s.deleted {
			dirty = append(dirty, pending{s, s.acked})
			s.dirty = false
		}
		s.mu.Unlock()
	}
	if len(dirty) == 0 {
		return nil
	}
	err := t.b.UpdateRecords(ctx, func(tx broker.RecordTx) error {
		for _, p := range dirty {
			b, err := encodeRecord(cursorRecord{Acked: p.acked})
			if err != nil {
				return err
			}
			if err := tx.PutRecord(broker.RecordSSFCursor, p.s.id, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, p := range dirty {
			p.s.mu.Lock()
			p.s.dirty = true
			p.s.mu.Unlock()
		}
		return err
	}
	return nil
}

// sweepInactive deletes poll streams nobody has polled or managed within
// the inactivity timeout.
func (t *Transmitter) sweepInactive(ctx context.Context) {
	now := t.b.Now()
	var idle []*stream
	for _, s := range t.list() {
		s.mu.Lock()
		if s.rec.Config.Delivery.Method == ssfwire.DeliveryPoll && now.Sub(s.lastActivity) > t.opts.InactivityTimeout {
			idle = append(idle, s)
		}
		s.mu.Unlock()
	}
	for _, s := range idle {
		if err := t.deleteStream(ctx, s); err != nil {
			t.log.Error("delete inactive stream", "stream", s.id, "err", err)
			continue
		}
		t.log.Info("deleted inactive stream", "stream", s.id, "receiver", s.rec.Receiver, "idle_for", t.opts.InactivityTimeout)
	}
}

// newStreamID returns 128 random bits, hex encoded (RFC 3986 unreserved).
func newStreamID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("ssf: stream id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// backfillCursor returns the cursor a new stream starts at: just before
// the oldest signal younger than the backfill horizon, found by binary
// search over the feed (signals are appended in time order).
func (t *Transmitter) backfillCursor(ctx context.Context) (uint64, error) {
	last := t.b.LastSignalSeq()
	horizon := t.b.Now().Add(-t.opts.Backfill)
	lo, hi := uint64(0), last
	for lo < hi {
		mid := lo + (hi-lo)/2
		next, err := t.b.Signals(ctx, mid, 1)
		if err != nil {
			return 0, err
		}
		if len(next) == 0 || !next[0].At.Before(horizon) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// saveStream writes a stream's record, and its cursor when withCursor.
// Call with s.mu held.
func (t *Transmitter) saveStream(ctx context.Context, s *stream, withCursor bool) error {
	rec, err := encodeRecord(s.rec)
	if err != nil {
		return err
	}
	cur, err := encodeRecord(cursorRecord{Acked: s.acked})
	if err != nil {
		return err
	}
	return t.b.UpdateRecords(ctx, func(tx broker.RecordTx) error {
		if err := tx.PutRecord(broker.RecordSSFStream, s.id, rec); err != nil {
			return err
		}
		if withCursor {
			return tx.PutRecord(broker.RecordSSFCursor, s.id, cur)
		}
		return nil
	})
}

// deleteStream removes a stream from the store and stops its delivery.
func (t *Transmitter) deleteStream(ctx context.Context, s *stream) error {
	err := t.b.UpdateRecords(ctx, func(tx broker.RecordTx) error {
		if err := tx.DeleteRecord(broker.RecordSSFStream, s.id); err != nil {
			return err
		}
		return tx.DeleteRecord(broker.RecordSSFCursor, s.id)
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.streams, s.id)
	t.mu.Unlock()
	s.mu.Lock()
	s.deleted = true
	if s.stopPush != nil {
		s.stopPush()
		s.stopPush = nil
	}
	s.wake()
	s.mu.Unlock()
	t.stats.streamsDeleted.Add(1)
	return nil
}

// setStatus changes a stream's status. A change the transmitter makes on
// its own is announced with a stream-updated event first (SSF 1.0
// §8.1.5). Leaving disabled starts from the current end of the feed, since
// a disabled stream holds nothing. Call with s.mu held.
func (t *Transmitter) setStatus(ctx context.Context, s *stream, status, reason string, byTransmitter bool) error {
	old := s.rec
	oldAcked := s.acked
	if status == old.Status && reason == old.Reason {
		return nil
	}
	jump := old.Status == ssfwire.StatusDisabled && status != ssfwire.StatusDisabled
	if jump {
		s.acked = max(s.acked, t.b.LastSignalSeq())
	}
	s.rec.Status, s.rec.Reason = status, clip(reason, 256)
	if err := t.saveStream(ctx, s, jump); err != nil {
		s.rec, s.acked = old, oldAcked
		return err
	}
	if jump || status == ssfwire.StatusDisabled {
		clear(s.ackedAbove)
	}
	if byTransmitter && status != old.Status {
		s.addControl(controlEvent{jti: s.id + ".c" + randomHex(8), typ: ssfwire.EventStreamUpdated,
			body: streamUpdatedEvent{Status: status, Reason: s.rec.Reason}})
	}
	s.wake()
	return nil
}

// SetStatus changes a stream's status on the transmitter's own initiative
// (an operator pausing a misbehaving receiver, say); the receiver is told
// with a stream-updated event.
func (t *Transmitter) SetStatus(ctx context.Context, streamID, status, reason string) error {
	if !validStatus(status) {
		return broker.Errorf(broker.EINVALID, "status must be enabled, paused or disabled")
	}
	s := t.stream(streamID)
	if s == nil {
		return broker.Errorf(broker.ENOTFOUND, "no stream %q", streamID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.setStatus(ctx, s, status, reason, true)
}

func validStatus(s string) bool {
	return s == ssfwire.StatusEnabled || s == ssfwire.StatusPaused || s == ssfwire.StatusDisabled
}

// list returns the streams; callers lock each one themselves.
func (t *Transmitter) list() []*stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*stream, 0, len(t.streams))
	for _, s := range t.streams {
		out = append(out, s)
	}
	return out
}

func (t *Transmitter) stream(id string) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[id]
}

// StreamInfo describes a stream for the console.
type StreamInfo struct {
	ID           string
	Receiver     string
	Method       string
	Endpoint     string
	Status       string
	Reason       string
	Description  string
	Acked        uint64 // the durable cursor
	Lag          uint64 // feed signals after the cursor
	CreatedAt    time.Time
	LastActivity time.Time // last poll or management call
	LastDelivery time.Time // last push answered 202
	Failures     int       // consecutive failed pushes
	LastError    string
}

// Streams lists the streams, oldest first.
func (t *Transmitter) Streams() []StreamInfo {
	head := t.b.LastSignalSeq()
	list := t.list()
	out := make([]StreamInfo, 0, len(list))
	for _, s := range list {
		s.mu.Lock()
		c := s.rec.Config
		info := StreamInfo{ID: s.id, Receiver: s.receiver, Method: c.Delivery.Method, Endpoint: c.Delivery.EndpointURL,
			Status: s.rec.Status, Reason: s.rec.Reason, Description: c.Description, Acked: s.acked,
			CreatedAt: s.rec.CreatedAt, LastActivity: s.lastActivity, LastDelivery: s.lastDelivery,
			Failures: s.failures, LastError: s.lastError}
		if head > s.acked {
			info.Lag = head - s.acked
		}
		s.mu.Unlock()
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b)
}
