package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire/ssfwire"
)

// Metadata returns the transmitter configuration metadata.
func (t *Transmitter) Metadata() ssfwire.Metadata {
	return ssfwire.Metadata{
		SpecVersion:              "1_0",
		Issuer:                   t.issuer,
		JWKSURI:                  t.opts.JWKSURI,
		DeliveryMethodsSupported: []string{ssfwire.DeliveryPush, ssfwire.DeliveryPoll},
		ConfigurationEndpoint:    t.base + "/ssf/stream",
		StatusEndpoint:           t.base + "/ssf/status",
		VerificationEndpoint:     t.base + "/ssf/verify",
		AuthorizationSchemes:     []ssfwire.AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6749"}},
		DefaultSubjects:          "ALL",
		UsageEndpoint:            t.base + "/ssf/usage",
	}
}

func (t *Transmitter) handleMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(t.Metadata())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}

func (t *Transmitter) pollURL(id string) string { return t.base + "/ssf/poll/" + id }

// streamRequest is a create, update or replace body. Pointers tell an
// absent member from an empty one.
type streamRequest struct {
	StreamID                *string          `json:"stream_id"`
	Issuer                  *string          `json:"iss"`
	Audience                json.RawMessage  `json:"aud"`
	EventsSupported         *[]string        `json:"events_supported"`
	EventsRequested         *[]string        `json:"events_requested"`
	EventsDelivered         *[]string        `json:"events_delivered"`
	Delivery                *deliveryRequest `json:"delivery"`
	MinVerificationInterval *int             `json:"min_verification_interval"`
	Description             *string          `json:"description"`
	InactivityTimeout       *int             `json:"inactivity_timeout"`
}

type deliveryRequest struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url"`
	AuthorizationHeader string `json:"authorization_header"`
}

// Limits on receiver-supplied members.
const (
	maxDescription  = 256
	maxEventTypes   = 32
	maxEventTypeLen = 512
	maxAuthHeader   = 4096
	maxEndpointURL  = 2048
)

type requestMode int

const (
	modeCreate requestMode = iota
	modeUpdate
	modeReplace
)

// applyReceiverFields sets the receiver-supplied members of c from req:
// for create and replace an absent member takes its default (SSF 1.0
// §8.1.1.1, §8.1.1.4), for update it is left as it is.
func (t *Transmitter) applyReceiverFields(c *ssfwire.StreamConfig, req *streamRequest, mode requestMode) error {
	switch {
	case req.Delivery != nil:
		d, err := t.checkDelivery(c.StreamID, *req.Delivery)
		if err != nil {
			return err
		}
		c.Delivery = d
	case mode != modeUpdate:
		c.Delivery = ssfwire.Delivery{Method: ssfwire.DeliveryPoll, EndpointURL: t.pollURL(c.StreamID)}
	}
	switch {
	case req.EventsRequested != nil:
		reqd := *req.EventsRequested
		if len(reqd) > maxEventTypes {
			return fmt.Errorf("events_requested lists %d types; the limit is %d", len(reqd), maxEventTypes)
		}
		c.EventsRequested = c.EventsRequested[:0]
		for _, e := range reqd {
			if len(e) > maxEventTypeLen {
				return fmt.Errorf("an events_requested entry is longer than %d bytes", maxEventTypeLen)
			}
			if !slices.Contains(c.EventsRequested, e) {
				c.EventsRequested = append(c.EventsRequested, e)
			}
		}
	case mode != modeUpdate:
		c.EventsRequested = nil
	}
	c.EventsDelivered = c.EventsDelivered[:0]
	for _, e := range ssfwire.EventsSupported {
		if c.EventsRequested == nil || slices.Contains(c.EventsRequested, e) {
			c.EventsDelivered = append(c.EventsDelivered, e)
		}
	}
	switch {
	case req.Description != nil:
		c.Description = clip(*req.Description, maxDescription)
	case mode != modeUpdate:
		c.Description = ""
	}
	if c.Delivery.Method == ssfwire.DeliveryPoll {
		c.InactivityTimeout = int(t.opts.InactivityTimeout / time.Second)
	} else {
		c.InactivityTimeout = 0
	}
	return nil
}

// checkDelivery validates a requested delivery method.
func (t *Transmitter) checkDelivery(id string, d deliveryRequest) (ssfwire.Delivery, error) {
	switch d.Method {
	case ssfwire.DeliveryPoll, "":
		// The poll endpoint is the transmitter's (SSF 1.0 §6.1.2).
		return ssfwire.Delivery{Method: ssfwire.DeliveryPoll, EndpointURL: t.pollURL(id)}, nil
	case ssfwire.DeliveryPush:
		if d.EndpointURL == "" {
			return ssfwire.Delivery{}, fmt.Errorf("push delivery needs an endpoint_url")
		}
		if len(d.EndpointURL) > maxEndpointURL {
			return ssfwire.Delivery{}, fmt.Errorf("endpoint_url is longer than %d bytes", maxEndpointURL)
		}
		u, err := url.Parse(d.EndpointURL)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil {
			return ssfwire.Delivery{}, fmt.Errorf("endpoint_url must be an absolute URL without userinfo or fragment")
		}
		if err := t.opts.CheckEndpoint(u); err != nil {
			return ssfwire.Delivery{}, fmt.Errorf("endpoint_url is not allowed: %v", err)
		}
		if len(d.AuthorizationHeader) > maxAuthHeader || strings.ContainsAny(d.AuthorizationHeader, "\r\n\x00") {
			return ssfwire.Delivery{}, fmt.Errorf("authorization_header must be one header value of at most %d bytes", maxAuthHeader)
		}
		return ssfwire.Delivery{Method: ssfwire.DeliveryPush, EndpointURL: d.EndpointURL, AuthorizationHeader: d.AuthorizationHeader}, nil
	}
	return ssfwire.Delivery{}, fmt.Errorf("delivery method %s is not supported (use %s or %s)", ssfwire.Quote(d.Method), ssfwire.DeliveryPoll, ssfwire.DeliveryPush)
}

// checkTransmitterFields checks that transmitter-supplied members present in
// an update or replace match the stream (SSF 1.0 §8.1.1.3).
func checkTransmitterFields(c *ssfwire.StreamConfig, req *streamRequest) error {
	if req.Issuer != nil && *req.Issuer != c.Issuer {
		return fmt.Errorf("iss does not match the stream")
	}
	if auds, err := ssfwire.ParseAudience(req.Audience); err != nil || auds != nil && (len(auds) != 1 || auds[0] != c.Audience) {
		return fmt.Errorf("aud does not match the stream; it cannot be changed")
	}
	if req.EventsSupported != nil && !slices.Equal(*req.EventsSupported, c.EventsSupported) {
		return fmt.Errorf("events_supported does not match the stream")
	}
	if req.EventsDelivered != nil && !slices.Equal(*req.EventsDelivered, c.EventsDelivered) {
		return fmt.Errorf("events_delivered does not match the stream")
	}
	if req.MinVerificationInterval != nil && *req.MinVerificationInterval != c.MinVerificationInterval {
		return fmt.Errorf("min_verification_interval does not match the stream")
	}
	if req.InactivityTimeout != nil && *req.InactivityTimeout != c.InactivityTimeout {
		return fmt.Errorf("inactivity_timeout does not match the stream")
	}
	return nil
}

func (t *Transmitter) handleCreate(w http.ResponseWriter, r *http.Request, receiver string) {
	req, ok := readStreamRequest(w, r)
	if !ok {
		return
	}
	id, err := newStreamID()
	if err != nil {
		t.internal(w, "create stream", err)
		return
	}
	now := t.b.Now().UTC()
	c := ssfwire.StreamConfig{StreamID: id, Issuer: t.issuer, Audience: receiver,
		EventsSupported:         slices.Clone(ssfwire.EventsSupported),
		MinVerificationInterval: int((t.opts.MinVerificationInterval + time.Second - 1) / time.Second)}
	if err := t.applyReceiverFields(&c, &req, modeCreate); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if !t.makeRoom(r.Context(), receiver) {
		writeError(w, http.StatusConflict, "invalid_request",
			fmt.Sprintf("this receiver has %d streams, the most allowed, all in use; delete one first", t.opts.MaxStreamsPerReceiver))
		return
	}
	start, err := t.backfillCursor(r.Context())
	if err != nil {
		t.internal(w, "find where a new stream starts", err)
		return
	}
	s := newStream(streamRecord{Config: c, Receiver: receiver, Status: ssfwire.StatusEnabled, CreatedAt: now}, start, now)
	s.mu.Lock()
	err = t.saveStream(r.Context(), s, true)
	s.mu.Unlock()
	if err != nil {
		t.internal(w, "save stream", err)
		return
	}
	t.mu.Lock()
	t.streams[id] = s
	t.mu.Unlock()
	s.mu.Lock()
	t.startPush(s)
	s.mu.Unlock()
	t.stats.streamsCreated.Add(1)
	t.log.Info("stream created", "stream", id, "receiver", receiver, "method", c.Delivery.Method, "from_seq", start+1)
	writeJSON(w, http.StatusCreated, c)
}

// makeRoom makes sure receiver may create another stream: under its limit,
// or by deleting its poll stream idle the longest, if that one has not
// been polled for a minute (a resource server that restarted without
// deleting its stream, say). It reports false when every stream is in use.
func (t *Transmitter) makeRoom(ctx context.Context, receiver string) bool {
	var owned int
	var idlest *stream
	var idleSince time.Time
	for _, s := range t.list() {
		if s.receiver != receiver {
			continue
		}
		owned++
		s.mu.Lock()
		if s.rec.Config.Delivery.Method == ssfwire.DeliveryPoll && (idlest == nil || s.lastActivity.Before(idleSince)) {
			idlest, idleSince = s, s.lastActivity
		}
		s.mu.Unlock()
	}
	if owned < t.opts.MaxStreamsPerReceiver {
		return true
	}
	if idlest == nil || t.b.Now().Sub(idleSince) < time.Minute+t.opts.PollTimeout {
		return false
	}
	if err := t.deleteStream(ctx, idlest); err != nil {
		t.log.Error("delete an idle stream to make room", "stream", idlest.id, "err", err)
		return false
	}
	t.log.Info("deleted the receiver's idlest stream to make room for a new one", "stream", idlest.id, "receiver", receiver)
	return true
}

// owned returns the receiver's stream named by id, or answers 404.
func (t *Transmitter) owned(w http.ResponseWriter, receiver, id string) *stream {
	if id == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "stream_id is required")
		return nil
	}
	s := t.stream(id)
	if s == nil || s.receiver != receiver {
		writeError(w, http.StatusNotFound, "not_found", "no stream "+ssfwire.Quote(id)+" for this receiver")
		return nil
	}
	s.mu.Lock()
	s.lastActivity = t.b.Now()
	s.mu.Unlock()
	return s
}

func (t *Transmitter) handleRead(w http.ResponseWriter, r *http.Request, receiver string) {
	if id := r.URL.Query().Get("stream_id"); id != "" {
		if s := t.owned(w, receiver, id); s != nil {
			writeJSON(w, http.StatusOK, s.snapshot().Config)
		}
		return
	}
	list := []ssfwire.StreamConfig{}
	for _, info := range t.Streams() {
		if info.Receiver != receiver {
			continue
		}
		if s := t.stream(info.ID); s != nil {
			list = append(list, s.snapshot().Config)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (t *Transmitter) handleUpdate(w http.ResponseWriter, r *http.Request, receiver string) {
	t.changeStream(w, r, receiver, modeUpdate)
}

func (t *Transmitter) handleReplace(w http.ResponseWriter, r *http.Request, receiver string) {
	t.changeStream(w, r, receiver, modeReplace)
}

// changeStream updates (PATCH) or replaces (PUT) a stream's configuration.
func (t *Transmitter) changeStream(w http.ResponseWriter, r *http.Request, receiver string, mode requestMode) {
	req, ok := readStreamRequest(w, r)
	if !ok {
		return
	}
	if req.StreamID == nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "stream_id is required")
		return
	}
	s := t.owned(w, receiver, *req.StreamID)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted {
		writeError(w, http.StatusNotFound, "not_found", "no stream "+ssfwire.Quote(s.id)+" for this receiver")
		return
	}
	old := s.rec
	c := old.Config
	c.EventsRequested = slices.Clone(c.EventsRequested)
	c.EventsDelivered = slices.Clone(c.EventsDelivered)
	if err := checkTransmitterFields(&c, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err := t.applyReceiverFields(&c, &req, mode); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	s.rec.Config = c
	if err := t.saveStream(r.Context(), s, false); err != nil {
		s.rec = old
		t.internal(w, "save stream", err)
		return
	}
	if c.Delivery.Method != old.Config.Delivery.Method {
		if s.stopPush != nil {
			s.stopPush()
			s.stopPush = nil
		}
		t.startPush(s)
	}
	s.wake()
	writeJSON(w, http.StatusOK, c)
}

func (t *Transmitter) handleDelete(w http.ResponseWriter, r *http.Request, receiver string) {
	s := t.owned(w, receiver, r.URL.Query().Get("stream_id"))
	if s == nil {
		return
	}
	if err := t.deleteStream(r.Context(), s); err != nil {
		t.internal(w, "delete stream", err)
		return
	}
	t.log.Info("stream deleted by its receiver", "stream", s.id, "receiver", receiver)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (t *Transmitter) handleReadStatus(w http.ResponseWriter, r *http.Request, receiver string) {
	s := t.owned(w, receiver, r.URL.Query().Get("stream_id"))
	if s == nil {
		return
	}
	rec := s.snapshot()
	writeJSON(w, http.StatusOK, ssfwire.StreamStatus{StreamID: s.id, Status: rec.Status, Reason: rec.Reason})
}

func (t *Transmitter) handleUpdateStatus(w http.ResponseWriter, r *http.Request, receiver string) {
	body, problem := readBody(w, r, maxManageBody)
	var req ssfwire.StreamStatus
	if problem == "" {
		if err := ssfwire.DecodeStrict(body, &req); err != nil {
			problem = "the body is not a stream status: " + err.Error()
		}
	}
	if problem == "" && !validStatus(req.Status) {
		problem = "status must be enabled, paused or disabled"
	}
	if problem != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	s := t.owned(w, receiver, req.StreamID)
	if s == nil {
		return
	}
	s.mu.Lock()
	err := t.setStatus(r.Context(), s, req.Status, req.Reason, false)
	out := ssfwire.StreamStatus{StreamID: s.id, Status: s.rec.Status, Reason: s.rec.Reason}
	s.mu.Unlock()
	if err != nil {
		t.internal(w, "save stream status", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

const maxState = 1024

func (t *Transmitter) handleVerify(w http.ResponseWriter, r *http.Request, receiver string) {
	body, problem := readBody(w, r, maxManageBody)
	var req ssfwire.VerificationRequest
	if problem == "" {
		if err := ssfwire.DecodeStrict(body, &req); err != nil {
			problem = "the body is not a verification request: " + err.Error()
		}
	}
	if problem == "" && len(req.State) > maxState {
		problem = fmt.Sprintf("state is longer than %d bytes", maxState)
	}
	if problem != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	s := t.owned(w, receiver, req.StreamID)
	if s == nil {
		return
	}
	now := t.b.Now()
	s.mu.Lock()
	if !s.lastVerify.IsZero() && now.Sub(s.lastVerify) < t.opts.MinVerificationInterval {
		s.mu.Unlock()
		w.Header().Set("Retry-After", fmt.Sprint(int(t.opts.MinVerificationInterval/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "slow_down", "verification requested too often on this stream")
		return
	}
	s.lastVerify = now
	s.addControl(controlEvent{jti: s.id + ".c" + randomHex(8), typ: ssfwire.EventVerification, body: verificationEvent{State: req.State}})
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// internal logs an unexpected failure in full and answers "internal error".
func (t *Transmitter) internal(w http.ResponseWriter, what string, err error) {
	t.log.Error(what, "err", err)
	code := http.StatusInternalServerError
	if broker.ErrorCode(err) == broker.ENOTFOUND {
		code = http.StatusNotFound
	}
	writeError(w, code, "server_error", "internal error")
}

// readStreamRequest reads a stream configuration from the body, answering
// 400 itself when it is not one.
func readStreamRequest(w http.ResponseWriter, r *http.Request) (streamRequest, bool) {
	body, problem := readBody(w, r, maxManageBody)
	var req streamRequest
	if problem == "" {
		if err := ssfwire.DecodeStrict(body, &req); err != nil {
			problem = "the body is not a stream configuration: " + err.Error()
		}
	}
	if problem != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", problem)
		return streamRequest{}, false
	}
	return req, true
}
