package guard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/writhq/writ/wire/ssfwire"
)

// feedState is what the guard knows about its revocation feed.
type feedState struct {
	lastContact atomic.Int64 // unix nanoseconds of the last poll answer
	ready       atomic.Bool  // caught up with the backlog at least once
	down        atomic.Pointer[string]
	stale       atomic.Bool // the guard is failing closed (for logging transitions)
	verified    atomic.Bool // the verification event of the current stream arrived
	pollErrors  atomic.Int64
	applied     atomic.Int64 // SETs applied
	refusedSETs atomic.Int64 // SETs refused (reported in setErrs)
}

// subscription is the guard's stream at writ.
type subscription struct {
	meta     ssfwire.Metadata
	streamID string
	aud      string // the stream's aud: what SETs for us carry
	pollURL  string
	state    string // the verification state we asked for
}

// fresh reports whether the feed is trustworthy now, and if not, why.
func (g *Guard) fresh(now time.Time) (bool, string) {
	f := &g.feed
	if reason := f.down.Load(); reason != nil {
		return false, "writ paused or disabled the revocation feed: " + *reason
	}
	if !f.ready.Load() {
		return false, "the revocation feed has not caught up yet"
	}
	last := f.lastContact.Load()
	if age := now.Sub(time.Unix(0, last)); age > g.cfg.StaleAfter {
		return false, fmt.Sprintf("no word from the revocation feed for %s (the bound is %s)", age.Round(time.Second), g.cfg.StaleAfter)
	}
	return true, ""
}

// runFeed subscribes to writ's revocation feed and long-polls it until
// ctx ends, then deletes the stream.
func (g *Guard) runFeed(ctx context.Context) {
	var sub *subscription
	defer func() {
		if sub != nil {
			g.unsubscribe(sub)
		}
	}()
	req := ssfwire.PollRequest{ReturnImmediately: true}
	failures := 0
	for ctx.Err() == nil {
		var err error
		if sub == nil {
			if sub, err = g.subscribe(ctx); err != nil {
				sub = nil
				failures++
				g.feedTrouble(ctx, failures, "subscribe to the revocation feed", err)
				continue
			}
			req = ssfwire.PollRequest{ReturnImmediately: true}
		}
		resp, status, err := g.poll(ctx, sub, req)
		if ctx.Err() != nil {
			return
		}
		if status == http.StatusNotFound {
			// Revocations may have been sent on the lost stream and never
			// reached us: refuse tokens until the new stream's backlog,
			// which reaches back a token lifetime, has been applied.
			g.feed.ready.Store(false)
			g.log.Warn("writ no longer has our revocation stream; refusing tokens until a new one has caught up", "stream", sub.streamID)
			sub = nil
			continue
		}
		if err != nil {
			failures++
			g.feed.pollErrors.Add(1)
			g.feedTrouble(ctx, failures, "poll the revocation feed", err)
			continue
		}
		failures = 0
		next := ssfwire.PollRequest{}
		held := false
		for jti, raw := range resp.Sets {
			if serr := g.applySET(ctx, sub, raw); serr != nil && serr.Code == ssfwire.ErrInvalidKey {
				// Most likely writ rotated its key and the JWKS is a moment
				// behind. The SET may be a revocation: neither ack nor refuse
				// it, so writ sends it again, and refuse every token until it
				// verifies.
				held = true
				g.feed.refusedSETs.Add(1)
				if g.feed.ready.Swap(false) {
					g.log.Warn("cannot verify a SET from the revocation feed yet; refusing tokens until it verifies",
						"jti", quoteValue(jti), "description", serr.Description)
				}
				continue
			} else if serr != nil {
				g.feed.refusedSETs.Add(1)
				g.log.Warn("refused a SET from the revocation feed", "jti", quoteValue(jti), "err", serr.Code, "description", serr.Description)
				if next.SetErrs == nil {
					next.SetErrs = map[string]ssfwire.SetErr{}
				}
				next.SetErrs[jti] = ssfwire.SetErr{Err: serr.Code, Description: serr.Description}
				continue
			}
			next.Ack = append(next.Ack, jti)
		}
		g.feed.lastContact.Store(g.now().UnixNano())
		if held {
			// Ask again shortly, with what was applied acknowledged.
			next.ReturnImmediately = true
			req = next
			sleepCtx(ctx, feedRefetch)
			continue
		}
		if !resp.MoreAvailable && !g.feed.ready.Swap(true) {
			g.log.Info("revocation feed caught up; accepting tokens", "stream", sub.streamID)
		}
		next.ReturnImmediately = resp.MoreAvailable
		req = next
	}
}

// feedTrouble logs a feed failure (the first, then every tenth) and waits
// before the next attempt, backing off to a few seconds.
func (g *Guard) feedTrouble(ctx context.Context, failures int, what string, err error) {
	if failures == 1 || failures%10 == 0 {
		g.log.Warn("cannot "+what+"; retrying", "failures", failures, "err", err)
	}
	d := min(100*time.Millisecond<<min(failures-1, 6), 5*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// subscribe discovers writ's transmitter and creates a poll stream.
func (g *Guard) subscribe(ctx context.Context) (*subscription, error) {
	meta, err := g.discover(ctx)
	if err != nil {
		return nil, err
	}
	body := map[string]any{
		"delivery":         map[string]string{"method": ssfwire.DeliveryPoll},
		"events_requested": ssfwire.EventsSupported,
		"description":      "writ guard of " + g.cfg.Audience,
	}
	var cfg ssfwire.StreamConfig
	status, err := g.callJSON(ctx, http.MethodPost, meta.ConfigurationEndpoint, body, &cfg)
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated {
		return nil, fmt.Errorf("create stream: writ answered %d", status)
	}
	switch {
	case cfg.Issuer != g.cfg.Issuer:
		return nil, fmt.Errorf("create stream: the stream's iss %q is not the issuer %q", cfg.Issuer, g.cfg.Issuer)
	case cfg.Delivery.Method != ssfwire.DeliveryPoll || cfg.Delivery.EndpointURL == "" || cfg.StreamID == "" || cfg.Audience == "":
		return nil, fmt.Errorf("create stream: writ did not give a poll stream")
	}
	sub := &subscription{meta: meta, streamID: cfg.StreamID, aud: cfg.Audience, pollURL: cfg.Delivery.EndpointURL, state: randomState()}
	// Whatever the reason for a new stream, the guard is ready only once
	// this stream's backlog has been applied.
	g.feed.ready.Store(false)
	g.feed.verified.Store(false)
	g.feed.down.Store(nil)
	if g.sub.Swap(sub) == nil {
		g.log.Info("subscribed to writ's revocation feed", "stream", sub.streamID)
	}
	// A verification event shows the stream works end to end; it is
	// informational: readiness comes from catching up.
	if _, err := g.callJSON(ctx, http.MethodPost, meta.VerificationEndpoint,
		ssfwire.VerificationRequest{StreamID: sub.streamID, State: sub.state}, nil); err != nil {
		g.log.Debug("verification request failed", "err", err)
	}
	return sub, nil
}

// discover fetches writ's SSF transmitter metadata (SSF 1.0 §7.2).
func (g *Guard) discover(ctx context.Context) (ssfwire.Metadata, error) {
	var meta ssfwire.Metadata
	u, err := url.Parse(g.cfg.Issuer)
	if err != nil {
		return meta, err
	}
	wk := u.Scheme + "://" + u.Host + "/.well-known/ssf-configuration" + strings.TrimSuffix(u.EscapedPath(), "/")
	status, err := g.callJSON(ctx, http.MethodGet, wk, nil, &meta)
	if err != nil {
		return meta, err
	}
	switch {
	case status != http.StatusOK:
		return meta, fmt.Errorf("SSF discovery: writ answered %d", status)
	case meta.Issuer != g.cfg.Issuer:
		return meta, fmt.Errorf("SSF discovery: issuer %q is not %q", meta.Issuer, g.cfg.Issuer)
	case meta.ConfigurationEndpoint == "":
		return meta, fmt.Errorf("SSF discovery: no configuration_endpoint")
	}
	if meta.JWKSURI != "" && g.cfg.JWKSURL == "" {
		g.jwks.url.Store(&meta.JWKSURI)
	}
	if meta.UsageEndpoint != "" {
		g.usageURL.Store(&meta.UsageEndpoint)
	}
	return meta, nil
}

// poll sends one poll request; the answer may take up to the
// transmitter's long-poll timeout.
func (g *Guard) poll(ctx context.Context, sub *subscription, req ssfwire.PollRequest) (*ssfwire.PollResponse, int, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.StaleAfter+5*time.Second)
	defer cancel()
	var resp ssfwire.PollResponse
	status, err := g.callJSON(ctx, http.MethodPost, sub.pollURL, req, &resp)
	if err != nil {
		return nil, status, err
	}
	if status != http.StatusOK {
		return nil, status, fmt.Errorf("poll: writ answered %d", status)
	}
	return &resp, status, nil
}

// unsubscribe deletes the stream, so writ stops keeping SETs for a guard
// that is gone.
func (g *Guard) unsubscribe(sub *subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	u := sub.meta.ConfigurationEndpoint + "?stream_id=" + url.QueryEscape(sub.streamID)
	if _, err := g.callJSON(ctx, http.MethodDelete, u, nil, nil); err != nil {
		g.log.Debug("delete revocation stream", "err", err)
	}
}

// applySET verifies a SET and applies it to the deny set.
func (g *Guard) applySET(ctx context.Context, sub *subscription, raw string) *ssfwire.SETError {
	set, err := ssfwire.VerifySET(raw, ssfwire.VerifyOptions{Issuer: g.cfg.Issuer, Audience: sub.aud, Algs: g.algs,
		Key: func(kid string) (*jose.JSONWebKey, error) { return g.jwks.feedKey(ctx, kid) }})
	if err != nil {
		var serr *ssfwire.SETError
		if errors.As(err, &serr) {
			return serr
		}
		return &ssfwire.SETError{Code: ssfwire.ErrInvalidRequest, Description: err.Error()}
	}
	g.feed.applied.Add(1)
	at := set.Event.Timestamp
	if at.IsZero() {
		at = set.IssuedAt
	}
	s := set.Subject
	switch set.Type {
	case ssfwire.EventSessionRevoked:
		switch {
		case s.Format == ssfwire.FormatComplex && s.Session != nil && s.Session.Format == ssfwire.FormatOpaque && s.Session.ID != "":
			g.deny.revokeGrant(s.Session.ID, at)
		case s.Format == ssfwire.FormatOpaque && s.ID != "":
			g.deny.revokeGrant(s.ID, at) // a session named by a simple subject
		case s.Format == ssfwire.FormatJWTID && s.Iss == g.cfg.Issuer && s.JTI != "":
			g.deny.revokeToken(s.JTI, at)
		case s.Format == ssfwire.FormatComplex && s.User != nil && s.User.Format == ssfwire.FormatIssSub && s.User.Iss == g.cfg.Issuer && s.User.Sub != "":
			g.deny.revokeAgent(s.User.Sub, set.Event.Epoch, at)
		case s.Format == ssfwire.FormatComplex && s.Tenant != nil && s.Tenant.Format == ssfwire.FormatURI && s.Tenant.URI == g.cfg.Issuer:
			g.deny.revokeAll(set.Event.Epoch, at)
		default:
			g.log.Debug("ignoring session-revoked with a subject the guard does not use", "format", s.Format)
			return nil
		}
		g.log.Debug("revocation applied", "jti", set.JTI, "txn", set.TXN)
	case ssfwire.EventTokenClaimsChange:
		if s.Format == ssfwire.FormatComplex && s.Session != nil && s.Session.ID != "" {
			if !g.deny.narrow(s.Session.ID, set.Event.Claims, at) {
				return &ssfwire.SETError{Code: ssfwire.ErrInvalidRequest, Description: "token-claims-change claims are malformed"}
			}
			g.log.Debug("grant narrowing applied", "jti", set.JTI, "txn", set.TXN)
		}
	case ssfwire.EventVerification:
		if s.ID != sub.streamID {
			return nil
		}
		if set.Event.State != sub.state {
			return &ssfwire.SETError{Code: ssfwire.ErrInvalidState, Description: "state does not match the verification request"}
		}
		g.feed.verified.Store(true)
	case ssfwire.EventStreamUpdated:
		if s.ID != sub.streamID {
			return nil
		}
		if set.Event.Status == ssfwire.StatusEnabled {
			if g.feed.down.Swap(nil) != nil {
				g.log.Info("writ re-enabled the revocation feed")
			}
		} else {
			why := set.Event.Status
			if set.Event.Reason != "" {
				why += ": " + set.Event.Reason
			}
			g.feed.down.Store(&why)
			g.log.Error("writ paused or disabled the revocation feed; failing closed", "status", set.Event.Status, "reason", set.Event.Reason)
		}
	}
	return nil
}

// callJSON sends a JSON request to writ and decodes a JSON answer into out
// (when out is set and the status is 2xx).
func (g *Guard) callJSON(ctx context.Context, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: malformed answer: %w", method, req.URL.Path, err)
		}
	}
	return resp.StatusCode, nil
}

// do sends a request to writ with the configured credentials: the feed
// access token when there is one (Config.FeedAccessToken), otherwise a
// fresh client assertion. A form request carries its client assertion in
// the form already.
func (g *Guard) do(req *http.Request) (*http.Response, error) {
	var token string
	if g.cfg.ClientAssertion != nil && req.Header.Get("Content-Type") != formType {
		if g.cfg.FeedAccessToken {
			token = g.feedBearer(req.Context())
		}
		cred := token
		if cred == "" {
			a, err := g.cfg.ClientAssertion(req.Context(), g.cfg.Issuer)
			if err != nil {
				return nil, fmt.Errorf("make a client assertion: %w", err)
			}
			cred = a
		}
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if g.cfg.Authenticate != nil {
		if err := g.cfg.Authenticate(req); err != nil {
			return nil, fmt.Errorf("authenticate to writ: %w", err)
		}
	}
	resp, err := g.client.Do(req)
	if err == nil && token != "" && resp.StatusCode == http.StatusUnauthorized {
		g.dropFeedToken(token)
	}
	return resp, err
}

func randomState() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
