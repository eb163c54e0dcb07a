package ssf_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/ssf"
	"github.com/writhq/writ/broker/ssf/ssftest"
	"github.com/writhq/writ/wire/ssfwire"
)

var update = flag.Bool("update", false, "rewrite golden files")

// receiver talks to the transmitter as one receiver.
type receiver struct {
	t  *testing.T
	h  *ssftest.Harness
	hc *http.Client
}

func newReceiver(t *testing.T, h *ssftest.Harness, id string) *receiver {
	return &receiver{t: t, h: h, hc: h.Client(id)}
}

// do sends a request and returns the status and body.
func (r *receiver) do(method, path string, body any) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = r.h.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (r *receiver) create(body any) ssfwire.StreamConfig {
	r.t.Helper()
	code, b := r.do("POST", "/ssf/stream", body)
	if code != http.StatusCreated {
		r.t.Fatalf("create stream: %d %s", code, b)
	}
	var c ssfwire.StreamConfig
	if err := json.Unmarshal(b, &c); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// poll polls a stream and verifies every SET it gets.
func (r *receiver) poll(c ssfwire.StreamConfig, req ssfwire.PollRequest) (map[string]*ssfwire.SET, bool) {
	r.t.Helper()
	code, b := r.do("POST", c.Delivery.EndpointURL, req)
	if code != http.StatusOK {
		r.t.Fatalf("poll: %d %s", code, b)
	}
	var resp ssfwire.PollResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		r.t.Fatalf("poll answer %s: %v", b, err)
	}
	out := map[string]*ssfwire.SET{}
	for jti, raw := range resp.Sets {
		s, err := ssfwire.VerifySET(raw, ssfwire.VerifyOptions{Issuer: r.h.URL, Audience: c.Audience, Key: r.h.KeyFunc()})
		if err != nil {
			r.t.Fatalf("SET %s: %v", jti, err)
		}
		if s.JTI != jti {
			r.t.Fatalf("SET keyed %s has jti %s", jti, s.JTI)
		}
		out[jti] = s
	}
	return out, resp.MoreAvailable
}

func immediate() ssfwire.PollRequest { return ssfwire.PollRequest{ReturnImmediately: true} }

func intp(n int) *int { return &n }

func keys(m map[string]*ssfwire.SET) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int { return cmpSeq(a, b) })
	return out
}

// cmpSeq orders feed jtis (stream.seq) by seq.
func cmpSeq(a, b string) int {
	sa, _ := strconv.Atoi(a[strings.LastIndexByte(a, '.')+1:])
	sb, _ := strconv.Atoi(b[strings.LastIndexByte(b, '.')+1:])
	return sa - sb
}

func TestMetadata(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, "")
	code, b := r.do("GET", "/.well-known/ssf-configuration", nil)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, b)
	}
	var m ssfwire.Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := ssfwire.Metadata{
		SpecVersion: "1_0", Issuer: h.URL, JWKSURI: h.URL + "/jwks",
		DeliveryMethodsSupported: []string{ssfwire.DeliveryPush, ssfwire.DeliveryPoll},
		ConfigurationEndpoint:    h.URL + "/ssf/stream", StatusEndpoint: h.URL + "/ssf/status",
		VerificationEndpoint: h.URL + "/ssf/verify", AuthorizationSchemes: []ssfwire.AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6749"}},
		DefaultSubjects: "ALL", UsageEndpoint: h.URL + "/ssf/usage",
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("metadata\n got %+v\nwant %+v", m, want)
	}
}

func TestStreamLifecycle(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, "rs-1")
	other := newReceiver(t, h, "rs-2")

	if code, _ := newReceiver(t, h, "").do("POST", "/ssf/stream", `{}`); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated create: %d, want 401", code)
	}
	if code, _ := newReceiver(t, h, "forbidden").do("POST", "/ssf/stream", `{}`); code != http.StatusForbidden {
		t.Errorf("forbidden receiver: %d, want 403", code)
	}
	if code, _ := r.do("POST", "/ssf/stream", `{"delivery":{"method":"urn:example:carrier-pigeon"}}`); code != http.StatusBadRequest {
		t.Errorf("unknown delivery method: %d, want 400", code)
	}
	if code, _ := r.do("POST", "/ssf/stream", `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"http://example.com/push"}}`); code != http.StatusBadRequest {
		t.Errorf("plain http push endpoint: %d, want 400", code)
	}
	if code, _ := r.do("POST", "/ssf/stream", `{"events_requested":`); code != http.StatusBadRequest {
		t.Errorf("malformed body: %d, want 400", code)
	}

	// Create: no delivery means poll, with the transmitter's endpoint.
	c := r.create(map[string]any{"events_requested": []string{ssfwire.EventSessionRevoked, "urn:example:unknown"}, "description": "guard of api"})
	if c.Issuer != h.URL || c.Audience != "rs-1" || c.StreamID == "" {
		t.Errorf("iss %q aud %q id %q", c.Issuer, c.Audience, c.StreamID)
	}
	if c.Delivery.Method != ssfwire.DeliveryPoll || c.Delivery.EndpointURL != h.URL+"/ssf/poll/"+c.StreamID {
		t.Errorf("delivery = %+v", c.Delivery)
	}
	if !slices.Equal(c.EventsDelivered, []string{ssfwire.EventSessionRevoked}) {
		t.Errorf("events_delivered = %v", c.EventsDelivered)
	}
	if c.InactivityTimeout == 0 || c.MinVerificationInterval == 0 || len(c.EventsSupported) != 4 {
		t.Errorf("transmitter-supplied members: %+v", c)
	}

	// Read one, read all; another receiver sees none of it.
	code, b := r.do("GET", "/ssf/stream?stream_id="+c.StreamID, nil)
	if code != http.StatusOK || !strings.Contains(string(b), c.StreamID) {
		t.Errorf("read: %d %s", code, b)
	}
	c2 := r.create(nil)
	code, b = r.do("GET", "/ssf/stream", nil)
	var list []ssfwire.StreamConfig
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list) != 2 {
		t.Errorf("read all: %d %s", code, b)
	}
	if code, b = other.do("GET", "/ssf/stream", nil); code != http.StatusOK || string(b) != "[]" {
		t.Errorf("other receiver's list: %d %s", code, b)
	}
	for _, m := range []string{"GET /ssf/stream?stream_id=", "GET /ssf/status?stream_id=", "DELETE /ssf/stream?stream_id="} {
		method, path, _ := strings.Cut(m, " ")
		if code, _ := other.do(method, path+c.StreamID, nil); code != http.StatusNotFound {
			t.Errorf("other receiver %s: %d, want 404", m, code)
		}
	}

	// Update: only what is sent changes; transmitter-supplied members must match.
	code, b = r.do("PATCH", "/ssf/stream", map[string]any{"stream_id": c.StreamID, "description": "renamed"})
	var u ssfwire.StreamConfig
	if err := json.Unmarshal(b, &u); code != http.StatusOK || err != nil || u.Description != "renamed" || !slices.Equal(u.EventsDelivered, c.EventsDelivered) {
		t.Errorf("update: %d %s", code, b)
	}
	for name, body := range map[string]map[string]any{
		"iss":              {"stream_id": c.StreamID, "iss": "https://evil.example"},
		"aud":              {"stream_id": c.StreamID, "aud": "rs-2"},
		"events_delivered": {"stream_id": c.StreamID, "events_delivered": []string{ssfwire.EventTokenClaimsChange}},
	} {
		if code, _ := r.do("PATCH", "/ssf/stream", body); code != http.StatusBadRequest {
			t.Errorf("update changing %s: %d, want 400", name, code)
		}
	}
	if code, _ := r.do("PATCH", "/ssf/stream", map[string]any{"description": "x"}); code != http.StatusBadRequest {
		t.Errorf("update without stream_id: %d, want 400", code)
	}

	// Replace: absent receiver-supplied members go back to their defaults.
	code, b = r.do("PUT", "/ssf/stream", map[string]any{"stream_id": c.StreamID, "aud": "rs-1"})
	u = ssfwire.StreamConfig{}
	if err := json.Unmarshal(b, &u); code != http.StatusOK || err != nil || u.Description != "" || len(u.EventsDelivered) != 4 {
		t.Errorf("replace: %d %s", code, b)
	}

	// Status.
	code, b = r.do("GET", "/ssf/status?stream_id="+c.StreamID, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"status":"enabled"`) {
		t.Errorf("status: %d %s", code, b)
	}
	code, b = r.do("POST", "/ssf/status", map[string]string{"stream_id": c.StreamID, "status": "paused", "reason": "maintenance"})
	if code != http.StatusOK || !strings.Contains(string(b), `"status":"paused"`) || !strings.Contains(string(b), "maintenance") {
		t.Errorf("pause: %d %s", code, b)
	}
	if code, _ := r.do("POST", "/ssf/status", map[string]string{"stream_id": c.StreamID, "status": "asleep"}); code != http.StatusBadRequest {
		t.Errorf("unknown status: %d, want 400", code)
	}
	r.do("POST", "/ssf/status", map[string]string{"stream_id": c.StreamID, "status": "enabled"})

	// Verification: 204, then the event with the state on the stream; a
	// second request too soon is 429.
	if code, b := r.do("POST", "/ssf/verify", map[string]string{"stream_id": c.StreamID, "state": "s-123"}); code != http.StatusNoContent {
		t.Fatalf("verify: %d %s", code, b)
	}
	if code, _ := r.do("POST", "/ssf/verify", map[string]string{"stream_id": c.StreamID}); code != http.StatusTooManyRequests {
		t.Errorf("second verify: %d, want 429", code)
	}
	sets, _ := r.poll(c, immediate())
	if len(sets) != 1 {
		t.Fatalf("after verify: %d SETs", len(sets))
	}
	for _, s := range sets {
		if s.Type != ssfwire.EventVerification || s.Event.State != "s-123" || s.Subject.Format != "opaque" || s.Subject.ID != c.StreamID {
			t.Errorf("verification SET = %+v", s)
		}
	}

	// Delete.
	if code, _ := r.do("DELETE", "/ssf/stream?stream_id="+c.StreamID, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := r.do("GET", "/ssf/stream?stream_id="+c.StreamID, nil); code != http.StatusNotFound {
		t.Errorf("read deleted: %d, want 404", code)
	}
	if code, _ := r.do("POST", c.Delivery.EndpointURL, `{}`); code != http.StatusNotFound {
		t.Errorf("poll deleted: %d, want 404", code)
	}
	if code, _ := r.do("DELETE", "/ssf/stream?stream_id="+c2.StreamID, nil); code != http.StatusNoContent {
		t.Errorf("delete second: %d", code)
	}
}

// TestSETFormat checks every kind of feed SET writ emits against golden
// files, with the values that change from run to run replaced.
func TestSETFormat(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)

	tokA := h.Mint(ssftest.Agent, "", "contents:read", "contents:write")
	h.Revoke(tokA.Grant.ID, "agent host may be compromised")
	tokB := h.Mint(ssftest.Agent, "", "contents:read", "contents:write")
	if _, err := h.Svc.NarrowGrant(h.Ctx, ssftest.Operator, tokB.Grant.ID,
		broker.Terms{Scopes: []string{"contents:read"}, TTL: 10 * time.Minute}, "no pushing"); err != nil {
		t.Fatal(err)
	}
	if err := h.Svc.Complete(h.Ctx, ssftest.Agent, tokB.JTI); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Svc.RevokeAgent(h.Ctx, ssftest.Operator, ssftest.Agent, "quarantine", false); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Svc.RevokeAll(h.Ctx, ssftest.Operator, "incident 42", false); err != nil {
		t.Fatal(err)
	}

	sets, more := r.poll(c, immediate())
	if len(sets) != 5 || more {
		t.Fatalf("%d SETs (more %v), want 5", len(sets), more)
	}
	names := []string{"grant-revoked", "grant-narrowed", "grant-completed", "agent-revoked", "all-revoked"}
	code, b := r.do("POST", c.Delivery.EndpointURL, immediate())
	if code != http.StatusOK {
		t.Fatal(code)
	}
	var resp ssfwire.PollResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	for i, jti := range keys(sets) {
		s := sets[jti]
		if s.TXN != jti[strings.LastIndexByte(jti, '.')+1:] {
			t.Errorf("%s: txn %q is not the feed seq", jti, s.TXN)
		}
		raw := resp.Sets[jti]
		header, payload := decodeJWS(t, raw)
		if header["typ"] != "secevent+jwt" || header["kid"] == "" {
			t.Errorf("%s: header %v", names[i], header)
		}
		norm := normalise(payload, h.URL, c.StreamID, tokA.Grant.ID, tokB.Grant.ID, tokA.JTI, tokB.JTI)
		golden(t, filepath.Join("testdata", "golden", names[i]+".json"), norm)
	}
}

func decodeJWS(t *testing.T, raw string) (map[string]any, []byte) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS")
	}
	var header map[string]any
	hb, err := b64(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		t.Fatalf("header: %v", err)
	}
	pb, err := b64(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return header, pb
}

// normalise replaces what differs between runs and indents the JSON.
func normalise(payload []byte, issuer, stream, grantA, grantB, jtiA, jtiB string) []byte {
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	m["iat"] = 1700000000
	b, _ := json.MarshalIndent(m, "", "  ")
	s := string(b)
	for old, repl := range map[string]string{issuer: "https://writ.example", stream: "STREAM", grantA: "GRANT-A", grantB: "GRANT-B", jtiA: "JTI-A", jtiB: "JTI-B"} {
		s = strings.ReplaceAll(s, old, repl)
	}
	s = regexp.MustCompile(`"event_timestamp": \d+`).ReplaceAllString(s, `"event_timestamp": 1700000000`)
	s = regexp.MustCompile(`"exp": \d+`).ReplaceAllString(s, `"exp": 1700000600`)
	return []byte(s + "\n")
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got %s\nwant %s", path, got, want)
	}
}

func TestPollWithAcks(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 300 * time.Millisecond, FlushInterval: 10 * time.Millisecond}})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)
	var grants []string
	for range 3 {
		tok := h.Mint(ssftest.Agent, "", "contents:read")
		h.Revoke(tok.Grant.ID, "done")
		grants = append(grants, tok.Grant.ID)
	}

	sets, more := r.poll(c, immediate())
	if len(sets) != 3 || more {
		t.Fatalf("%d SETs, more %v", len(sets), more)
	}
	ids := keys(sets)
	for i, jti := range ids {
		if got := sets[jti].Subject.Session.ID; got != grants[i] {
			t.Errorf("SET %d is about %s, want %s (feed order)", i, got, grants[i])
		}
	}
	// Not acknowledged: delivered again, same jti.
	again, _ := r.poll(c, immediate())
	if !slices.Equal(keys(again), ids) {
		t.Errorf("redelivery %v, want %v", keys(again), ids)
	}
	// Acknowledge the first and report the second as an error: only the
	// third is left.
	left, _ := r.poll(c, ssfwire.PollRequest{ReturnImmediately: true, Ack: ids[:1],
		SetErrs: map[string]ssfwire.SetErr{ids[1]: {Err: ssfwire.ErrInvalidAudience, Description: "not for us"}}})
	if !slices.Equal(keys(left), ids[2:]) {
		t.Errorf("after ack: %v, want %v", keys(left), ids[2:])
	}
	// invalid_key is not an acknowledgement: the receiver's JWKS may lag a
	// key rotation, and the SET may be a revocation, so it comes again.
	retried, _ := r.poll(c, ssfwire.PollRequest{ReturnImmediately: true,
		SetErrs: map[string]ssfwire.SetErr{ids[2]: {Err: ssfwire.ErrInvalidKey, Description: "no such kid"}}})
	if !slices.Equal(keys(retried), ids[2:]) {
		t.Errorf("after invalid_key: %v, want %v again", keys(retried), ids[2:])
	}
	// maxEvents bounds the answer and says more are available.
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "done")
	one, more := r.poll(c, ssfwire.PollRequest{ReturnImmediately: true, MaxEvents: intp(1)})
	if len(one) != 1 || !more {
		t.Errorf("maxEvents 1: %d SETs, more %v", len(one), more)
	}
	// An ack-only request answers at once with nothing.
	none, _ := r.poll(c, ssfwire.PollRequest{MaxEvents: intp(0), Ack: ids[2:]})
	if len(none) != 0 {
		t.Errorf("ack-only request got %d SETs", len(none))
	}
	rest, _ := r.poll(c, immediate())
	if len(rest) != 1 {
		t.Fatalf("%d SETs left, want 1", len(rest))
	}
	last := keys(rest)

	// A long poll with nothing due answers empty at the timeout...
	start := time.Now()
	empty, _ := r.poll(c, ssfwire.PollRequest{Ack: last})
	if len(empty) != 0 || time.Since(start) < 250*time.Millisecond {
		t.Errorf("long poll with nothing due: %d SETs after %v", len(empty), time.Since(start))
	}
	// ...and wakes when a revocation arrives.
	tok = h.Mint(ssftest.Agent, "", "contents:read")
	done := make(chan map[string]*ssfwire.SET)
	go func() {
		s, _ := r.poll(c, ssfwire.PollRequest{})
		done <- s
	}()
	time.Sleep(50 * time.Millisecond)
	h.Revoke(tok.Grant.ID, "woken")
	if got := <-done; len(got) != 1 {
		t.Errorf("long poll woke with %d SETs", len(got))
	}

	// The cursor is durable: a transmitter started afresh over the same
	// store does not redeliver what was acknowledged.
	time.Sleep(50 * time.Millisecond) // let Run write the cursor
	t2, err := ssf.New(h.Ctx, h.Svc, ssf.Options{Authenticate: ssftest.BearerReceiver})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler(t2))
	defer srv.Close()
	c2 := c
	c2.Delivery.EndpointURL = srv.URL + "/ssf/poll/" + c.StreamID
	after, _ := r.poll(c2, immediate())
	if len(after) != 1 {
		t.Errorf("after restart: %d SETs, want only the unacknowledged one", len(after))
	}
}

func TestPollRefusals(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)
	for name, body := range map[string]string{
		"not json":           `{"ack":`,
		"negative maxEvents": `{"maxEvents":-3}`,
		"ack not strings":    `{"ack":[1,2]}`,
	} {
		code, b := r.do("POST", c.Delivery.EndpointURL, body)
		if code != http.StatusBadRequest || !strings.Contains(string(b), `"err":"invalid_request"`) {
			t.Errorf("%s: %d %s", name, code, b)
		}
	}
	if code, _ := newReceiver(t, h, "rs-2").do("POST", c.Delivery.EndpointURL, `{}`); code != http.StatusNotFound {
		t.Errorf("another receiver's stream: %d, want 404", code)
	}
	if code, _ := newReceiver(t, h, "").do("POST", c.Delivery.EndpointURL, `{}`); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	big := `{"ack":["` + strings.Repeat("a", 2<<20) + `"]}`
	if code, _ := r.do("POST", c.Delivery.EndpointURL, big); code != http.StatusBadRequest {
		t.Errorf("huge body: %d, want 400", code)
	}
}

func TestPausedHoldsDisabledDrops(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 100 * time.Millisecond}})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)
	setStatus := func(s string) {
		if code, b := r.do("POST", "/ssf/status", map[string]string{"stream_id": c.StreamID, "status": s}); code != http.StatusOK {
			t.Fatalf("%s: %d %s", s, code, b)
		}
	}
	revoke := func() {
		tok := h.Mint(ssftest.Agent, "", "contents:read")
		h.Revoke(tok.Grant.ID, "x")
	}
	setStatus("paused")
	revoke()
	if sets, _ := r.poll(c, ssfwire.PollRequest{}); len(sets) != 0 {
		t.Errorf("paused stream delivered %d SETs", len(sets))
	}
	setStatus("enabled")
	held, _ := r.poll(c, immediate())
	if len(held) != 1 {
		t.Errorf("re-enabled stream: %d held SETs, want 1", len(held))
	}
	setStatus("disabled")
	revoke()
	setStatus("enabled")
	// Disabled holds nothing, not even what was delivered but not yet
	// acknowledged: the stream starts again from the end of the feed.
	if sets, _ := r.poll(c, immediate()); len(sets) != 0 {
		t.Errorf("disabled stream kept %d SETs", len(sets))
	}

	// The transmitter pausing a stream on its own says so first.
	if err := h.Transmitter.SetStatus(h.Ctx, c.StreamID, "paused", "receiver misbehaving"); err != nil {
		t.Fatal(err)
	}
	sets, _ := r.poll(c, immediate())
	found := false
	for _, s := range sets {
		if s.Type == ssfwire.EventStreamUpdated {
			found = s.Event.Status == "paused" && s.Event.Reason == "receiver misbehaving" && s.Subject.ID == c.StreamID
		}
	}
	if !found {
		t.Errorf("no stream-updated event after the transmitter paused the stream: %v", sets)
	}
}

// TestPushReceiverFailsThenRecovers: a push receiver that answers 503 for
// a while, then 202, gets every SET, once each, in feed order.
func TestPushReceiverFailsThenRecovers(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}})
	var mu sync.Mutex
	var got []*ssfwire.SET
	failing := true
	attempts := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if r.Header.Get("Content-Type") != "application/secevent+jwt" || r.Header.Get("Authorization") != "Bearer push-secret" {
			t.Errorf("push headers: %v", r.Header)
		}
		if failing {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		s, err := ssfwire.VerifySET(string(b), ssfwire.VerifyOptions{Issuer: h.URL, Audience: "rs-push", Key: h.KeyFunc()})
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"err":"invalid_request","description":%q}`, err.Error())
			t.Errorf("pushed SET: %v", err)
			return
		}
		got = append(got, s)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	r := newReceiver(t, h, "rs-push")
	c := r.create(map[string]any{"delivery": map[string]string{"method": ssfwire.DeliveryPush,
		"endpoint_url": recv.URL + "/events", "authorization_header": "Bearer push-secret"}})
	if c.Delivery.Method != ssfwire.DeliveryPush || c.InactivityTimeout != 0 {
		t.Fatalf("push stream config: %+v", c)
	}

	var want []string
	for range 5 {
		tok := h.Mint(ssftest.Agent, "", "contents:read")
		h.Revoke(tok.Grant.ID, "x")
		want = append(want, tok.Grant.ID)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return attempts >= 4 })
	mu.Lock()
	failing = false
	mu.Unlock()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })

	// Two more after recovery, and a verification event.
	for range 2 {
		tok := h.Mint(ssftest.Agent, "", "contents:read")
		h.Revoke(tok.Grant.ID, "x")
		want = append(want, tok.Grant.ID)
	}
	if code, _ := r.do("POST", "/ssf/verify", map[string]string{"stream_id": c.StreamID, "state": "ping"}); code != http.StatusNoContent {
		t.Fatalf("verify: %d", code)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want)+1 })
	time.Sleep(50 * time.Millisecond) // nothing more should come
	mu.Lock()
	defer mu.Unlock()
	var order []string
	seen := map[string]bool{}
	verified := false
	for _, s := range got {
		if seen[s.JTI] {
			t.Errorf("SET %s delivered twice", s.JTI)
		}
		seen[s.JTI] = true
		switch s.Type {
		case ssfwire.EventSessionRevoked:
			order = append(order, s.Subject.Session.ID)
		case ssfwire.EventVerification:
			verified = s.Event.State == "ping"
		}
	}
	if !slices.Equal(order, want) {
		t.Errorf("delivered\n %v\nwant\n %v", order, want)
	}
	if !verified {
		t.Error("no verification event pushed")
	}
	info := h.Transmitter.Streams()[0]
	if info.Lag != 0 || info.Failures != 0 {
		t.Errorf("stream info after recovery: %+v", info)
	}
}

// TestPushSurvivesRestart: SETs that could not be pushed before the
// transmitter stopped are pushed, in order, by the next one.
func TestPushSurvivesRestart(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{NoRun: true, Transmitter: ssf.Options{FlushInterval: 5 * time.Millisecond}})
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s, err := ssfwire.VerifySET(string(b), ssfwire.VerifyOptions{Issuer: h.URL, Key: h.KeyFunc()})
		if err != nil {
			t.Errorf("pushed SET: %v", err)
			return
		}
		mu.Lock()
		got = append(got, s.Subject.Session.ID)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer recv.Close()
	r := newReceiver(t, h, "rs-push")
	r.create(map[string]any{"delivery": map[string]string{"method": ssfwire.DeliveryPush, "endpoint_url": recv.URL}})
	var want []string
	revoke := func() {
		tok := h.Mint(ssftest.Agent, "", "contents:read")
		h.Revoke(tok.Grant.ID, "x")
		want = append(want, tok.Grant.ID)
	}
	// The first transmitter pushes two, then stops.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Transmitter.Run(ctx) }()
	revoke()
	revoke()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Revocations while no transmitter runs...
	revoke()
	revoke()
	// ...reach the receiver from a new transmitter over the same store.
	t2, err := ssf.New(h.Ctx, h.Svc, ssf.Options{Authenticate: ssftest.BearerReceiver, CheckEndpoint: ssftest.AllowLoopback, Egress: ssftest.LoopbackEgress})
	if err != nil {
		t.Fatal(err)
	}
	h.RunTransmitter(t2)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 4 })
	time.Sleep(30 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("pushed %v, want %v", got, want)
	}
}

// TestBackfill: a new stream starts one token lifetime back, so it gets
// revocations that can still matter and none that cannot.
func TestBackfill(t *testing.T) {
	ssftest.CheckLeaks(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h := ssftest.New(t, ssftest.Options{Now: now})
	old := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(old.Grant.ID, "long ago")
	mu.Lock()
	clock = clock.Add(2 * time.Hour) // longer than any token lives
	mu.Unlock()
	recent := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(recent.Grant.ID, "just now")

	r := newReceiver(t, h, "rs-late")
	c := r.create(nil)
	sets, _ := r.poll(c, immediate())
	if len(sets) != 1 {
		t.Fatalf("%d SETs, want 1", len(sets))
	}
	for _, s := range sets {
		if s.Subject.Session.ID != recent.Grant.ID {
			t.Errorf("backfilled %s, want only %s", s.Subject.Session.ID, recent.Grant.ID)
		}
	}
}

func TestUsageReport(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	r := newReceiver(t, h, ssftest.Resource)
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "x")
	// Another resource server may not report uses of this resource's grants.
	other := newReceiver(t, h, "https://other.example")
	if code, b := other.do("POST", "/ssf/usage", ssfwire.UsageReport{Uses: []ssfwire.GrantUse{{SID: tok.Grant.ID, Accepted: 5}}}); code != http.StatusForbidden {
		t.Fatalf("foreign usage report: %d %s, want 403", code, b)
	}
	rep := ssfwire.UsageReport{Uses: []ssfwire.GrantUse{{SID: tok.Grant.ID, Accepted: 0, Refused: 2}, {SID: "grant-unknown", Refused: 1}}}
	if code, b := r.do("POST", "/ssf/usage", rep); code != http.StatusNoContent {
		t.Fatalf("usage: %d %s", code, b)
	}
	if code, _ := r.do("POST", "/ssf/usage", `{"uses":[{"sid":"g","accepted":-1}]}`); code != http.StatusBadRequest {
		t.Errorf("negative count: %d, want 400", code)
	}
	if err := h.Svc.FlushUsage(h.Ctx); err != nil {
		t.Fatal(err)
	}
	g, err := h.Svc.Grant(h.Ctx, tok.Grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.RefusedAfterEnd != 2 || g.AcceptedAfterEnd != 0 {
		t.Errorf("refused after end %d, accepted after end %d", g.RefusedAfterEnd, g.AcceptedAfterEnd)
	}
}

func TestInactiveStreamDeleted(t *testing.T) {
	ssftest.CheckLeaks(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h := ssftest.New(t, ssftest.Options{Now: now, Transmitter: ssf.Options{InactivityTimeout: time.Second}})
	r := newReceiver(t, h, "rs-1")
	c := r.create(nil)
	mu.Lock()
	clock = clock.Add(time.Hour)
	mu.Unlock()
	waitFor(t, func() bool { return len(h.Transmitter.Streams()) == 0 })
	if code, _ := r.do("GET", "/ssf/stream?stream_id="+c.StreamID, nil); code != http.StatusNotFound {
		t.Errorf("inactive stream still there: %d", code)
	}
}

// waitFor polls cond until it holds, with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestStreamLimit: a receiver at its stream limit gets 409 while its
// streams are in use, and room is made by deleting one long idle.
func TestStreamLimit(t *testing.T) {
	ssftest.CheckLeaks(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h := ssftest.New(t, ssftest.Options{Now: now, Transmitter: ssf.Options{MaxStreamsPerReceiver: 2}})
	r := newReceiver(t, h, "rs-1")
	r.create(nil)
	r.create(nil)
	if code, _ := r.do("POST", "/ssf/stream", `{}`); code != http.StatusConflict {
		t.Fatalf("third stream: %d, want 409", code)
	}
	if c := newReceiver(t, h, "rs-2").create(nil); c.StreamID == "" {
		t.Fatal("another receiver is not limited by rs-1's streams")
	}
	mu.Lock()
	clock = clock.Add(10 * time.Minute)
	mu.Unlock()
	r.poll(r.create(nil), immediate()) // room made by deleting an idle one
	if len(h.Transmitter.Streams()) != 3 {
		t.Errorf("%d streams, want 3", len(h.Transmitter.Streams()))
	}
}

// TestNarrowGrant: narrowing a live grant refuses anything that is not
// narrower, and a grant that is no longer live.
func TestNarrowGrant(t *testing.T) {
	ssftest.CheckLeaks(t)
	h := ssftest.New(t, ssftest.Options{})
	tok := h.Mint(ssftest.Agent, "", "contents:read", "pulls:write")
	for name, c := range map[string]struct {
		op    broker.Operator
		terms broker.Terms
		code  string
	}{
		"no operator":      {broker.Operator{}, broker.Terms{Scopes: []string{"contents:read"}}, broker.EUNAUTHORIZED},
		"wider scope":      {ssftest.Operator, broker.Terms{Scopes: []string{"contents:read", "contents:write"}}, broker.EINVALID},
		"longer TTL":       {ssftest.Operator, broker.Terms{Scopes: []string{"contents:read"}, TTL: 5 * time.Hour}, broker.EINVALID},
		"other resource":   {ssftest.Operator, broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://billing.example"}, broker.EINVALID},
		"no scope":         {ssftest.Operator, broker.Terms{Scopes: []string{"openid"}}, broker.EINVALID},
		"TTL already over": {ssftest.Operator, broker.Terms{Scopes: []string{"contents:read"}, TTL: time.Nanosecond}, broker.EINVALID},
	} {
		if _, err := h.Svc.NarrowGrant(h.Ctx, c.op, tok.Grant.ID, c.terms, "x"); broker.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want code %s", name, err, c.code)
		}
	}
	g, err := h.Svc.NarrowGrant(h.Ctx, ssftest.Operator, tok.Grant.ID, broker.Terms{Scopes: []string{"pulls:write"}}, "no reading")
	if err != nil || !slices.Equal(g.Terms.Scopes, []string{"pulls:write"}) || !g.ExpiresAt.Equal(tok.Grant.ExpiresAt) {
		t.Fatalf("narrow: %v %+v", err, g)
	}
	h.Revoke(tok.Grant.ID, "x")
	if _, err := h.Svc.NarrowGrant(h.Ctx, ssftest.Operator, tok.Grant.ID, broker.Terms{Scopes: []string{"pulls:write"}}, "x"); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Errorf("narrowing a revoked grant: %v", err)
	}
}

// TestSignalsReachOnlyTheirResource: with Serves set, a grant's revocation
// reaches the receivers serving its resource only; revoke-all reaches all.
func TestSignalsReachOnlyTheirResource(t *testing.T) {
	ssftest.CheckLeaks(t)
	serves := func(receiver, resource string) bool { return receiver == "rs-api" && resource == ssftest.Resource }
	h := ssftest.New(t, ssftest.Options{Transmitter: ssf.Options{PollTimeout: 300 * time.Millisecond, Serves: serves}})
	mine, other := newReceiver(t, h, "rs-api"), newReceiver(t, h, "rs-elsewhere")
	cm, co := mine.create(nil), other.create(nil)
	tok := h.Mint(ssftest.Agent, "", "contents:read")
	h.Revoke(tok.Grant.ID, "done")
	if _, err := h.Svc.RevokeAll(h.Ctx, ssftest.Operator, "incident", false); err != nil {
		t.Fatal(err)
	}
	got, _ := mine.poll(cm, immediate())
	if len(got) != 2 {
		t.Errorf("the resource's own server got %d SETs, want the grant's and revoke-all", len(got))
	}
	got, _ = other.poll(co, immediate())
	if len(got) != 1 {
		t.Fatalf("another resource server got %d SETs, want only revoke-all", len(got))
	}
	for _, set := range got {
		if set.Subject.Tenant == nil {
			t.Errorf("another resource server learnt of a grant that is not its own: %+v", set.Subject)
		}
	}
}
