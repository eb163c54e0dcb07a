package ssf

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/writhq/writ/wire/ssfwire"
)

// handlePoll serves a stream's poll endpoint (RFC 8936): it records the
// acknowledgements and error reports, then answers with the SETs due, at
// once if there are any (or returnImmediately was asked), otherwise when
// one arrives or the long-poll timeout passes.
func (t *Transmitter) handlePoll(w http.ResponseWriter, r *http.Request, receiver string) {
	s := t.stream(r.PathValue("stream"))
	if s == nil || s.receiver != receiver {
		writeSETError(w, http.StatusNotFound, ssfwire.ErrInvalidRequest, "no such stream for this receiver")
		return
	}
	body, problem := readBody(w, r, maxPollBody)
	var req *ssfwire.PollRequest
	if problem == "" {
		var err error
		if req, err = ssfwire.ParsePollRequest(body); err != nil {
			problem = err.Error()
		}
	}
	if problem != "" {
		writeSETError(w, http.StatusBadRequest, ssfwire.ErrInvalidRequest, problem)
		return
	}
	t.stats.polls.Add(1)
	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		writeSETError(w, http.StatusNotFound, ssfwire.ErrInvalidRequest, "no such stream for this receiver")
		return
	}
	if s.rec.Config.Delivery.Method != ssfwire.DeliveryPoll {
		s.mu.Unlock()
		writeSETError(w, http.StatusBadRequest, ssfwire.ErrInvalidRequest, "this stream delivers by push, not poll")
		return
	}
	s.lastActivity = t.b.Now()
	head := t.b.LastSignalSeq()
	for _, jti := range req.Ack {
		s.ack(jti, head)
	}
	for jti, e := range req.SetErrs {
		// A reported error is an acknowledgement too: the receiver has the
		// SET and says why it refused it; sending it again would not help,
		// except when it could not find the key: after a key rotation its
		// JWKS may be a moment behind, and the SET may be a revocation.
		if e.Err != ssfwire.ErrInvalidKey {
			s.ack(jti, head)
		}
		t.stats.setErrs.Add(1)
		t.log.Warn("receiver refused a SET", "stream", s.id, "receiver", receiver, "jti", ssfwire.Quote(jti),
			"err", ssfwire.Quote(e.Err), "description", ssfwire.Quote(e.Description))
	}
	s.mu.Unlock()

	limit := t.opts.MaxEvents
	if req.MaxEvents != nil {
		limit = min(limit, *req.MaxEvents)
	}
	deadline := time.NewTimer(t.opts.PollTimeout)
	defer deadline.Stop()
	for {
		due, more, upto, enabled, changed, aud, err := t.pollDue(r.Context(), s, limit)
		if err != nil {
			if err == errStreamGone {
				writeSETError(w, http.StatusNotFound, ssfwire.ErrInvalidRequest, "no such stream for this receiver")
				return
			}
			t.log.Error("poll: read revocation feed", "stream", s.id, "err", err)
			writeSETError(w, http.StatusInternalServerError, "server_error", "internal error")
			return
		}
		if len(due) > 0 || req.ReturnImmediately || limit == 0 {
			t.answerPoll(w, due, more, aud)
			return
		}
		if !t.waitPoll(r.Context(), enabled, upto, changed, deadline.C) {
			if r.Context().Err() != nil {
				return // the receiver hung up
			}
			t.answerPoll(w, nil, false, aud)
			return
		}
	}
}

var errStreamGone = fmt.Errorf("stream deleted")

// pollDue collects what a poll answer would carry now.
func (t *Transmitter) pollDue(ctx context.Context, s *stream, limit int) (due []pending, more bool, upto uint64, enabled bool, changed <-chan struct{}, aud string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted {
		return nil, false, 0, false, nil, "", errStreamGone
	}
	due = controlDue(s, limit)
	more = len(s.control) > len(due)
	enabled = s.rec.Status == ssfwire.StatusEnabled
	upto = t.b.LastSignalSeq()
	if enabled && len(due) < limit {
		feed, m, u, err := t.scan(ctx, s, limit-len(due))
		if err != nil {
			return nil, false, 0, false, nil, "", err
		}
		due, more, upto = append(due, feed...), more || m, u
	} else if enabled && upto > s.acked {
		more = true
	}
	return due, more, upto, enabled, s.changed, s.rec.Config.Audience, nil
}

// waitPoll waits for something to deliver; it reports false when the
// deadline passed or ctx ended first.
func (t *Transmitter) waitPoll(ctx context.Context, enabled bool, upto uint64, changed <-chan struct{}, deadline <-chan time.Time) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var feed <-chan struct{}
	if enabled {
		feed = t.waitFeed(wctx, upto)
	}
	select {
	case <-feed:
		return true
	case <-changed:
		return true
	case <-deadline:
		return false
	case <-ctx.Done():
		return false
	}
}

// answerPoll signs the due SETs and writes the poll answer.
func (t *Transmitter) answerPoll(w http.ResponseWriter, due []pending, more bool, aud string) {
	resp := ssfwire.PollResponse{Sets: make(map[string]string, len(due)), MoreAvailable: more}
	for _, p := range due {
		set, err := t.setFor(p, aud)
		if err != nil {
			t.log.Error("poll: sign SET", "err", err)
			writeSETError(w, http.StatusInternalServerError, "server_error", "internal error")
			return
		}
		resp.Sets[p.jti] = set
	}
	t.stats.pollDelivered.Add(int64(len(due)))
	writeJSON(w, http.StatusOK, resp)
}
