package paging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/writhq/writ/broker"
)

// Escalation is the operator an auto-denial is audited under.
var Escalation = broker.Operator{Issuer: "writ", Subject: "escalation", Name: "writ escalation"}

// Broker is what the pager needs of writ.
type Broker interface {
	Pending(ctx context.Context) ([]*broker.TaskRequest, error)
	Deny(ctx context.Context, op broker.Operator, requestID, reason string) (*broker.Decision, error)
	Subscribe(ctx context.Context) <-chan broker.Event
}

// Options tune a Pager.
type Options struct {
	Now        func() time.Time // default time.Now
	HTTPClient *http.Client     // default a client with a 10 s timeout
	Logger     *slog.Logger
	// Interval is how often waiting requests are checked (default 5 s).
	Interval time.Duration
	// Attempts is how many times a page is sent before it is given up
	// (default 6); Backoff is the first wait, doubled each time up to a
	// minute (default 1 s).
	Attempts int
	Backoff  time.Duration
}

// Pager pages about waiting requests. Run it for as long as writ serves.
type Pager struct {
	cfg  *Config
	b    Broker
	opts Options

	mu    sync.Mutex
	pages map[string]*tracked // by request id
	// queues: one FIFO per receiver, so a resolve never overtakes its trigger.
	queues map[*Receiver]chan Page
}

type tracked struct {
	req       *broker.TaskRequest
	notified  bool
	escalated bool
	sent      []string // queues paged
}

// New returns a pager.
func New(cfg *Config, b Broker, opts Options) *Pager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	p := &Pager{cfg: cfg, b: b, opts: opts, pages: make(map[string]*tracked), queues: make(map[*Receiver]chan Page)}
	for q := range cfg.Queues {
		for i := range cfg.Queues[q] {
			p.queues[&cfg.Queues[q][i]] = make(chan Page, 1024)
		}
	}
	return p
}

// Run delivers pages, follows decisions to resolve them, and checks the
// waiting requests every Interval, until ctx ends.
func (p *Pager) Run(ctx context.Context) error {
	events := p.b.Subscribe(ctx)
	var wg sync.WaitGroup
	for r, ch := range p.queues {
		wg.Go(func() { p.deliver(ctx, r, ch) })
	}
	defer wg.Wait()
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	p.Tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-events:
			if !ok {
				return nil
			}
			p.onEvent(e)
		case <-t.C:
			p.Tick(ctx)
		}
	}
}

// Tick checks every waiting request against the thresholds at the
// pager's clock: it pages, escalates and auto-denies.
func (p *Pager) Tick(ctx context.Context) {
	reqs, err := p.b.Pending(ctx)
	if err != nil {
		p.opts.Logger.Warn("paging: list pending requests", "err", err)
		return
	}
	now := p.opts.Now()
	seen := make(map[string]bool, len(reqs))
	var deny []*broker.TaskRequest
	p.mu.Lock()
	for _, r := range reqs {
		seen[r.ID] = true
		t := p.pages[r.ID]
		if t == nil {
			t = &tracked{}
			p.pages[r.ID] = t
		}
		t.req = r
		waited := now.Sub(r.CreatedAt)
		if !t.notified && waited >= p.cfg.NotifyAfter {
			t.notified = true
			q := queueOf(r)
			p.sendLocked(q, newPage(StageWaiting, r, q, now, p.cfg.ConsoleHint))
			t.sent = append(t.sent, q)
		}
		if p.cfg.EscalateAfter > 0 && !t.escalated && waited >= p.cfg.EscalateAfter {
			t.escalated = true
			p.sendLocked(p.cfg.EscalateTo, newPage(StageEscalated, r, p.cfg.EscalateTo, now, p.cfg.ConsoleHint))
			t.sent = append(t.sent, p.cfg.EscalateTo)
		}
		if p.cfg.AutoDenyAfter > 0 && waited >= p.cfg.AutoDenyAfter {
			deny = append(deny, r)
		}
	}
	// A request that left the queue without an event we saw: resolve it.
	for id, t := range p.pages {
		if !seen[id] {
			p.resolveLocked(id, t, "no longer pending", now)
		}
	}
	p.mu.Unlock()
	for _, r := range deny {
		reason := fmt.Sprintf("no operator decided within %s: denied by the escalation policy", humanDuration(p.cfg.AutoDenyAfter))
		if _, err := p.b.Deny(ctx, Escalation, r.ID, reason); err != nil && broker.ErrorCode(err) != broker.ECONFLICT {
			p.opts.Logger.Warn("paging: auto-deny", "request", shortID(r.ID), "err", err)
		}
	}
}

func queueOf(r *broker.TaskRequest) string {
	if r.LoginHint == "" {
		return "oncall"
	}
	return r.LoginHint
}

// onEvent resolves the page of a request that was decided, expired or
// was cancelled.
func (p *Pager) onEvent(e broker.Event) {
	if e.Request == nil {
		return
	}
	var outcome string
	switch e.Kind {
	case broker.EventRequestDecided:
		outcome = string(e.Request.State)
		if e.Decision != nil {
			outcome = fmt.Sprintf("%s by %s", e.Request.State, neutral(e.Decision.Operator.Display(), 80))
		}
	case broker.EventRequestExpired:
		outcome = "expired"
	case broker.EventRequestCancelled:
		outcome = "cancelled"
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.pages[e.Request.ID]; ok {
		t.req = e.Request
		p.resolveLocked(e.Request.ID, t, outcome, p.opts.Now())
	}
}

func (p *Pager) resolveLocked(id string, t *tracked, outcome string, now time.Time) {
	delete(p.pages, id)
	if t.req == nil {
		return
	}
	for _, q := range t.sent {
		pg := newPage(StageResolved, t.req, q, now, "")
		pg.Outcome = outcome
		p.sendLocked(q, pg)
	}
}

func (p *Pager) sendLocked(queue string, pg Page) {
	for i := range p.cfg.Queues[queue] {
		ch := p.queues[&p.cfg.Queues[queue][i]]
		select {
		case ch <- pg:
		default:
			p.opts.Logger.Warn("paging: receiver queue full; page dropped", "queue", queue, "event", pg.Event)
		}
	}
}

// deliver sends one receiver's pages in order, retrying each with backoff.
func (p *Pager) deliver(ctx context.Context, r *Receiver, ch <-chan Page) {
	for {
		select {
		case <-ctx.Done():
			return
		case pg := <-ch:
			p.send(ctx, r, pg)
		}
	}
}

func (p *Pager) send(ctx context.Context, r *Receiver, pg Page) {
	b, err := json.Marshal(body(r, pg))
	if err != nil {
		p.opts.Logger.Error("paging: encode", "err", err)
		return
	}
	wait := p.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := p.post(ctx, r, b)
		if err == nil {
			p.opts.Logger.Info("paging: sent", "kind", r.Kind, "event", pg.Event, "request", pg.Request, "attempt", attempt)
			return
		}
		if attempt >= p.opts.Attempts || ctx.Err() != nil {
			p.opts.Logger.Error("paging: gave up", "kind", r.Kind, "event", pg.Event, "request", pg.Request, "attempts", attempt, "err", err)
			return
		}
		p.opts.Logger.Warn("paging: retrying", "kind", r.Kind, "event", pg.Event, "request", pg.Request, "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(wait*2, time.Minute)
	}
}

// post makes one attempt. Errors never include the URL: it may hold a
// secret (a Slack webhook).
func (p *Pager) post(ctx context.Context, r *Receiver, b []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build request: invalid receiver URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "writ-paging")
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s receiver unreachable", r.Kind)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s receiver answered %s", r.Kind, resp.Status)
	}
	return nil
}
