package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/writhq/writ/wire/ssfwire"
)

// startPush starts the push worker of a push stream while Run runs. Call
// with s.mu held.
func (t *Transmitter) startPush(s *stream) {
	if s.stopPush != nil || s.deleted || s.rec.Config.Delivery.Method != ssfwire.DeliveryPush {
		return
	}
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.runCtx == nil {
		return
	}
	ctx, cancel := context.WithCancel(t.runCtx)
	s.stopPush = cancel
	t.workers.Add(1)
	go func() {
		defer t.workers.Done()
		t.pushLoop(ctx, s)
	}()
}

// pushLoop delivers a push stream's SETs one at a time, in feed order,
// until ctx ends: control events first, then the feed while the stream is
// enabled. A SET is done when the receiver answers 202 (RFC 8935 §2.2);
// anything else is retried with exponential backoff, so a receiver that
// was down gets everything it missed, in order, when it comes back.
func (t *Transmitter) pushLoop(ctx context.Context, s *stream) {
	log := t.log.With("stream", s.id, "receiver", s.receiver)
	for ctx.Err() == nil {
		s.mu.Lock()
		if s.deleted {
			s.mu.Unlock()
			return
		}
		rec := s.rec
		due := controlDue(s, 1)
		var upto uint64
		var err error
		if len(due) == 0 && rec.Status == ssfwire.StatusEnabled {
			due, _, upto, err = t.scan(ctx, s, 1)
		}
		changed := s.changed
		lastDelivery := s.lastDelivery
		s.mu.Unlock()
		if err != nil {
			log.Error("push: read revocation feed", "err", err)
			t.pause(ctx, s, err.Error())
			continue
		}
		if len(due) == 0 {
			t.waitForWork(ctx, s, rec.Status == ssfwire.StatusEnabled, upto, changed, lastDelivery)
			continue
		}
		p := due[0]
		set, err := t.setFor(p, rec.Config.Audience)
		if err == nil {
			err = t.post(ctx, rec.Config.Delivery, set)
		}
		if ctx.Err() != nil {
			return
		}
		var perm *permanentError
		switch {
		case err == nil:
			t.stats.pushDelivered.Add(1)
		case asPermanent(err, &perm):
			// The receiver refused this SET for what it is; sending the same
			// one again cannot succeed, and holding it would block the rest.
			log.Error("push: receiver refused a SET; skipping it", "jti", p.jti, "type", p.typ, "err", perm.code, "description", perm.desc)
			t.stats.pushRefused.Add(1)
		default:
			t.stats.pushFailures.Add(1)
			t.pause(ctx, s, err.Error())
			continue
		}
		s.mu.Lock()
		s.ack(p.jti, t.b.LastSignalSeq())
		s.lastDelivery, s.failures, s.lastError = t.b.Now(), 0, ""
		s.mu.Unlock()
	}
}

// waitForWork waits until the stream has something to push: a new feed
// signal after upto (when enabled), a control event or status change, the
// keepalive being due, or ctx ending.
func (t *Transmitter) waitForWork(ctx context.Context, s *stream, enabled bool, upto uint64, changed <-chan struct{}, lastDelivery time.Time) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var feed <-chan struct{}
	if enabled {
		feed = t.waitFeed(wctx, upto)
	}
	var keepalive <-chan time.Time
	if t.opts.PushKeepalive > 0 {
		wait := t.opts.PushKeepalive - t.b.Now().Sub(lastDelivery)
		timer := time.NewTimer(max(wait, 0))
		defer timer.Stop()
		keepalive = timer.C
	}
	select {
	case <-feed:
	case <-changed:
	case <-ctx.Done():
	case <-keepalive:
		s.mu.Lock()
		if len(s.control) == 0 {
			s.addControl(controlEvent{jti: s.id + ".c" + randomHex(8), typ: ssfwire.EventVerification, body: verificationEvent{}})
		}
		s.lastDelivery = t.b.Now() // counts from the attempt, so a dead receiver gets one at a time
		s.mu.Unlock()
	}
}

// pause records a failed push and waits out the backoff.
func (t *Transmitter) pause(ctx context.Context, s *stream, why string) {
	s.mu.Lock()
	s.failures++
	n := s.failures
	s.lastError = clip(why, 300)
	changed := s.changed
	s.mu.Unlock()
	d := t.opts.MinBackoff
	for i := 1; i < n && d < t.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, t.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1) // jitter, so receivers coming back are not hit in step
	if n == 1 || n%10 == 0 {
		t.log.Warn("push failed; retrying", "stream", s.id, "failures", n, "retry_in", d.Round(time.Millisecond), "err", clip(why, 300))
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	case <-changed:
		// A configuration change (say, a fixed endpoint) is worth an
		// immediate retry.
	}
}

// permanentError is a receiver's refusal of one SET that a retry cannot fix.
type permanentError struct{ code, desc string }

func (e *permanentError) Error() string { return "receiver refused the SET: " + e.code + ": " + e.desc }

func asPermanent(err error, target **permanentError) bool { return errors.As(err, target) }

// scrubURLError drops the URL from a client error: an endpoint URL may
// carry a secret in its query.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// post pushes one SET (RFC 8935 §2).
func (t *Transmitter) post(ctx context.Context, d ssfwire.Delivery, set string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.EndpointURL, strings.NewReader(set))
	if err != nil {
		return fmt.Errorf("push request: %w", err)
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if d.AuthorizationHeader != "" {
		req.Header.Set("Authorization", d.AuthorizationHeader)
	}
	resp, err := t.opts.PushClient.Do(req)
	if err != nil {
		return fmt.Errorf("push: %w", scrubURLError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusAccepted {
		return nil
	}
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode == http.StatusBadRequest && (e.Err == ssfwire.ErrInvalidRequest || e.Err == ssfwire.ErrInvalidState) {
		return &permanentError{code: e.Err, desc: ssfwire.Quote(e.Description)}
	}
	if e.Err != "" {
		return fmt.Errorf("push answered %s: %s: %s", resp.Status, ssfwire.Quote(e.Err), ssfwire.Quote(e.Description))
	}
	return fmt.Errorf("push answered %s", resp.Status)
}
