package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/wire"
)

// defaultMaxStepUps bounds the step-ups of one task when Options says nothing.
const defaultMaxStepUps = 3

// maxReplayBody bounds a request body the step-up client keeps to send
// again after a step-up; a larger one's 403 is returned as it is.
const maxReplayBody = 4 << 20

// ErrStepUpLimit says a task has used all the step-ups Options.MaxStepUps
// allows; the call that needed one more is refused without asking writ.
var ErrStepUpLimit = errors.New("agent: the task has used all its step-ups")

// StepUpError is a step-up that produced no token: the operator denied it
// (errors.Is(err, ErrDenied); Reason has the operator's words), nobody
// decided in time, writ refused the request, or the challenge asked for
// something a step-up may not ask for.
type StepUpError struct {
	Resource string
	Scopes   []string
	Err      error
}

func (e *StepUpError) Error() string {
	return "agent: step-up for " + strings.Join(e.Scopes, " ") + " at " + e.Resource + ": " + e.Err.Error()
}

func (e *StepUpError) Unwrap() error { return e.Err }

// Reason is writ's description of the denial when the operator denied the
// step-up ("denied: <the operator's reason>"), else "".
func (e *StepUpError) Reason() string {
	var oe *Error
	if errors.Is(e.Err, ErrDenied) && errors.As(e.Err, &oe) {
		return oe.Description
	}
	return ""
}

// stepUps is what a task and its step-up follow-ons share: the count of
// step-ups against the bound, the follow-on tasks they produced, and the
// outcomes that must not be asked for again.
type stepUps struct {
	turn     chan struct{} // one step-up at a time; a channel so waiting honours ctx
	n        int
	children []*Task
	refused  map[string]error // by resource and scopes: denied, expired

	// mu guards outcomes, which Refusals reads at any time, learned, and
	// children's appends (the step-up client reads them at any time;
	// step-ups read them holding turn).
	mu       sync.Mutex
	outcomes []*StepUpError  // the step-ups that produced no token, oldest first
	learned  map[string]need // by requestKey: what a challenge said such a request needs
}

func newStepUps() *stepUps {
	return &stepUps{turn: make(chan struct{}, 1), refused: map[string]error{}, learned: map[string]need{}}
}

// StepUp turns a resource server's 403 insufficient_scope challenge into a
// follow-on request of t for exactly the authority the challenge names
// (its scopes, and its authorization details, which may name no other
// action and no location outside the resource), waits for the operator,
// and returns the follow-on's task, whose token holds that authority. The
// operator sees the request as a difference from t's grant; revoking t
// revokes it too.
//
// It never asks twice for the same thing: a follow-on whose token already
// allows what the challenge names (wire.AllowsAt) is returned as is, and a denied or expired one is answered
// with the same *StepUpError. A task and its follow-ons together make at
// most Options.MaxStepUps step-ups (ErrStepUpLimit after that).
func (t *Task) StepUp(ctx context.Context, ch *wire.ScopeChallenge) (*Task, error) {
	return t.stepUp(ctx, ch, "")
}

// stepUp is StepUp for a challenge to a request of requestURL ("" when
// the caller has no request): the resource must contain that URL.
func (t *Task) stepUp(ctx context.Context, ch *wire.ScopeChallenge, requestURL string) (*Task, error) {
	if ch == nil || len(ch.Scopes) == 0 {
		return nil, errors.New("agent: a step-up needs a challenge naming the missing scopes")
	}
	resource, err := t.stepUpResource(ctx, ch)
	if err != nil {
		return nil, &StepUpError{Scopes: ch.Scopes, Err: err}
	}
	fail := func(err error) (*Task, error) {
		return nil, &StepUpError{Resource: resource, Scopes: ch.Scopes, Err: err}
	}
	if requestURL != "" && !wire.ResourceWithin(requestURL, resource) {
		return fail(fmt.Errorf("the challenge to %s names resource %s, which does not contain it", requestURL, resource))
	}
	for i, d := range ch.Details {
		switch {
		case d.Type != wire.TaskDetailType:
			return fail(fmt.Errorf("authorization detail %d has type %q, not writ's", i+1, d.Type))
		case len(d.Actions) == 0 || slices.ContainsFunc(d.Actions, func(a string) bool { return !slices.Contains(ch.Scopes, a) }):
			return fail(fmt.Errorf("authorization detail %d names actions beyond the challenge's scopes", i+1))
		case len(d.Locations) == 0 || slices.ContainsFunc(d.Locations, func(l string) bool { return !wire.ResourceWithin(l, resource) }):
			return fail(fmt.Errorf("authorization detail %d has a location outside %s", i+1, resource))
		}
	}
	s := t.steps
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.turn }()

	now := t.client.now()
	at := requestURL
	if at == "" {
		at = resource
	}
	if child := s.covering(resource, need{scopes: ch.Scopes, details: ch.Details}, at, now); child != nil {
		return child, nil
	}
	key := resource + " " + strings.Join(sortedCopy(ch.Scopes), " ")
	if err := s.refused[key]; err != nil {
		return fail(err)
	}
	limit := t.client.opts.MaxStepUps
	if limit == 0 {
		limit = defaultMaxStepUps
	}
	if s.n >= limit {
		return fail(ErrStepUpLimit)
	}
	ttl := t.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return fail(errors.New("the task's token has expired: ask for a new task"))
	}
	s.n++
	intent := "Step-up of task " + short(t.ID)
	if t.intent != "" {
		intent = "Step-up of \u201c" + trimRunes(t.intent, 80) + "\u201d"
	}
	intent += ": " + resource + " needs " + strings.Join(ch.Scopes, " ")
	p, err := t.FollowOn(ctx, TaskRequest{Intent: intent, Scopes: ch.Scopes, Details: ch.Details, Resource: resource, TTL: ttl})
	if err != nil {
		return fail(err)
	}
	p.steps = s
	child, err := t.client.Wait(ctx, p, nil)
	if err != nil {
		out := &StepUpError{Resource: resource, Scopes: ch.Scopes, Err: err}
		if errors.Is(err, ErrDenied) || errors.Is(err, ErrExpired) {
			s.refused[key] = err
			s.mu.Lock()
			s.outcomes = append(s.outcomes, out)
			s.mu.Unlock()
		}
		return nil, out
	}
	child.resource = resource
	s.mu.Lock()
	s.children = append(s.children, child)
	s.mu.Unlock()
	t.client.log.Debug("stepped up", "task", short(t.ID), "follow_on", short(child.ID), "scopes", strings.Join(child.Scopes, " "))
	return child, nil
}

// Refusals returns the step-ups of t and its follow-ons that the operator
// denied or nobody decided, oldest first. Clients that do not keep the
// error's type on the way up (the MCP SDK reports a transport error as
// text) find the typed cause here.
func (t *Task) Refusals() []*StepUpError {
	t.steps.mu.Lock()
	defer t.steps.mu.Unlock()
	return slices.Clone(t.steps.outcomes)
}

// covering returns a live follow-on at resource whose token holds n
// (judged at location for actions n's details do not place).
func (s *stepUps) covering(resource string, n need, location string, now time.Time) *Task {
	for _, c := range s.children {
		if c.resource == resource && now.Before(c.ExpiresAt) && holds(c, n, location) {
			return c
		}
	}
	return nil
}

// stepUpResource is the resource the missing authority is at: the one the
// challenge's RFC 9728 metadata names, which must be served by this writ
// and match the metadata's URL (§3.3); or, when the challenge names no
// metadata, the resource t was asked for.
func (t *Task) stepUpResource(ctx context.Context, ch *wire.ScopeChallenge) (string, error) {
	if ch.ResourceMetadata == "" {
		if t.resource == "" {
			return "", errors.New("the challenge names no resource_metadata and the task names no resource")
		}
		return t.resource, nil
	}
	var md wire.ProtectedResourceMetadata
	if err := getJSON(ctx, t.client.http, ch.ResourceMetadata, &md); err != nil {
		return "", fmt.Errorf("protected-resource metadata: %w", err)
	}
	switch {
	case md.Resource == "" || wire.ProtectedResourceMetadataURL(md.Resource) != ch.ResourceMetadata:
		return "", fmt.Errorf("the metadata at %s names resource %q, which is not the one its URL is for (RFC 9728 §3.3)", ch.ResourceMetadata, md.Resource)
	case !slices.Contains(md.AuthorizationServers, t.client.meta.Issuer):
		return "", fmt.Errorf("resource %s does not name %s among its authorization servers", md.Resource, t.client.meta.Issuer)
	}
	return md.Resource, nil
}

// StepUpClient returns an http.Client whose requests carry t's token, as
// HTTPClient's do, and which answers a 403 insufficient_scope by stepping
// up (StepUp) and sending the request once more with the follow-on's
// token: the caller sees the answer to that second attempt, or a
// *StepUpError (in a *url.Error) when the step-up produced no token. A
// follow-on already holding the authority is used without asking writ
// again, and the task remembers which kind of request (method, URL, and
// the JSON-RPC method and tool or resource of an MCP call) needed what, so
// later requests of that kind are sent with the follow-on's token from the
// first try instead of being refused once with t's.
// A step-up waits for the operator, so the client has no timeout of its
// own: bound each request with its context.
func (t *Task) StepUpClient() *http.Client {
	base := t.client.http.Transport
	return &http.Client{Transport: &stepUpTransport{task: t, base: base, rts: map[*Task]http.RoundTripper{}}}
}

type stepUpTransport struct {
	task *Task
	base http.RoundTripper
	mu   sync.Mutex
	rts  map[*Task]http.RoundTripper // each task's DPoP transport, which keeps its nonces
}

func (st *stepUpTransport) transport(t *Task) http.RoundTripper {
	st.mu.Lock()
	defer st.mu.Unlock()
	rt, ok := st.rts[t]
	if !ok {
		rt = t.Transport(st.base)
		st.rts[t] = rt
	}
	return rt
}

// RoundTrip implements http.RoundTripper.
func (st *stepUpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replay, err := replayable(req)
	if err != nil {
		return nil, err
	}
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	key := requestKey(replay)
	first := st.task.steps.tokenFor(st.task, key, u.String(), st.task.client.now())
	resp, err := st.transport(first).RoundTrip(replay)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		return resp, err
	}
	ch, err := wire.ParseScopeChallenge(resp.Header)
	if err != nil || replay.Body != nil && replay.Body != http.NoBody && replay.GetBody == nil {
		// Not a step-up challenge, or a body too large to send again: the
		// 403 is the caller's answer.
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	st.task.steps.learn(key, ch)
	child, err := st.task.stepUp(req.Context(), ch, u.String())
	if err != nil {
		return nil, err
	}
	again := replay.Clone(req.Context())
	if replay.GetBody != nil {
		if again.Body, err = replay.GetBody(); err != nil {
			return nil, err
		}
	}
	return st.transport(child).RoundTrip(again)
}

// replayable returns req with a body that can be sent twice, when it is
// no larger than maxReplayBody; a larger one is sent as it is, once.
func replayable(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return req, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	if err != nil {
		req.Body.Close()
		return nil, fmt.Errorf("agent: read request body: %w", err)
	}
	r := req.Clone(req.Context())
	if len(b) > maxReplayBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), req.Body), req.Body}
		return r, nil
	}
	req.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return r, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func trimRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
