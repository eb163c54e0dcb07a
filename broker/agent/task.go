package agent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/wire"
)

// TaskRequest is what an agent asks for.
type TaskRequest struct {
	// Intent says, for the operator, what the task is; it is sent as the
	// CIBA binding_message. Required.
	Intent string
	// Scopes asked for at Resource.
	Scopes []string
	// Details are RFC 9396 authorization details of writ's task type
	// (wire.TaskDetailType), the fine-grained form of Scopes. Optional.
	Details []wire.AuthorizationDetail
	// Resource is the audience (RFC 8707): the resource server's URI. May be
	// empty when the agent may ask for one resource only.
	Resource string
	// TTL is how long the grant should live; zero asks for writ's default.
	TTL time.Duration
	// Expiry is how long the request may wait for a decision; zero means
	// writ's review deadline.
	Expiry time.Duration
	// ParentID is the id of the task this one follows on from.
	ParentID string
	// LoginHint names the approver queue; Options.LoginHint when empty.
	LoginHint string
	// OpenID asks for an ID token naming the approving operator.
	OpenID bool
}

// Pending is a task request writ has accepted for review.
type Pending struct {
	// ID is the CIBA auth_req_id: the task's id.
	ID string
	// Interval is how often to poll; ExpiresAt when writ stops waiting.
	Interval  time.Duration
	ExpiresAt time.Time
	dpop      *dpop.Signer
	// intent and resource are what was asked, for step-ups of the task.
	intent, resource string
	steps            *stepUps // shared with the parent, for a follow-on
}

// Request submits a task request (CIBA backchannel authentication). It
// returns at once; Wait for the decision.
func (c *Client) Request(ctx context.Context, tr TaskRequest) (*Pending, error) {
	if strings.TrimSpace(tr.Intent) == "" {
		return nil, errors.New("agent: a task request needs an intent")
	}
	signer, err := c.dpopSigner()
	if err != nil {
		return nil, err
	}
	scopes := tr.Scopes
	if tr.OpenID {
		scopes = append([]string{wire.ScopeOpenID}, scopes...)
	}
	hint := tr.LoginHint
	if hint == "" {
		hint = c.opts.LoginHint
	}
	if hint == "" {
		hint = "oncall"
	}
	form := url.Values{
		"scope":           {strings.Join(scopes, " ")},
		"binding_message": {tr.Intent},
		"login_hint":      {hint},
	}
	if len(tr.Details) > 0 {
		b, err := json.Marshal(tr.Details)
		if err != nil {
			return nil, fmt.Errorf("agent: encode authorization details: %w", err)
		}
		form.Set("authorization_details", string(b))
	}
	setIf(form, "resource", tr.Resource)
	setIf(form, "parent_auth_req_id", tr.ParentID)
	if tr.TTL > 0 {
		form.Set("requested_ttl", strconv.FormatInt(int64((tr.TTL+time.Second-1)/time.Second), 10))
	}
	if tr.Expiry > 0 {
		form.Set("requested_expiry", strconv.FormatInt(int64((tr.Expiry+time.Second-1)/time.Second), 10))
	}
	var ack struct {
		AuthReqID string `json:"auth_req_id"`
		ExpiresIn int64  `json:"expires_in"`
		Interval  int64  `json:"interval"`
	}
	if _, err := c.post(ctx, c.meta.BackchannelAuthenticationEndpoint, form, nil, &ack); err != nil {
		return nil, err
	}
	if ack.AuthReqID == "" || ack.ExpiresIn <= 0 {
		return nil, errors.New("agent: writ's acknowledgement has no auth_req_id or expires_in")
	}
	interval := time.Duration(ack.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second // CIBA §7.3's default
	}
	return &Pending{ID: ack.AuthReqID, Interval: interval,
		ExpiresAt: c.now().Add(time.Duration(ack.ExpiresIn) * time.Second), dpop: signer,
		intent: tr.Intent, resource: tr.Resource}, nil
}

func setIf(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

// dpopSigner returns the signer of the configured DPoP key, or of a fresh
// one for this task.
func (c *Client) dpopSigner() (*dpop.Signer, error) {
	if c.opts.DPoPKey != nil {
		alg := c.opts.DPoPAlg
		if alg == "" {
			alg = jose.EdDSA
			if jwk, ok := c.opts.DPoPKey.(*jose.JSONWebKey); ok && jwk.Algorithm != "" {
				alg = jose.SignatureAlgorithm(jwk.Algorithm)
			}
		}
		return dpop.NewSigner(c.opts.DPoPKey, alg)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("agent: generate DPoP key: %w", err)
	}
	return dpop.NewSigner(priv, jose.EdDSA)
}

// Task is an approved task: the DPoP-bound access token and what it grants.
type Task struct {
	// ID is the task's id (the auth_req_id), the ParentID of follow-ons.
	ID          string
	AccessToken string
	TokenType   string // "DPoP" (or "Bearer" if writ minted an unbound token)
	ExpiresAt   time.Time
	// Scopes and Details are what was granted: an operator may have
	// narrowed them from what was asked.
	Scopes  []string
	Details []wire.AuthorizationDetail
	// IDToken names the approving operator, when OpenID was asked for.
	IDToken string

	client *Client
	dpop   *dpop.Signer
	// intent and resource are what was asked; steps counts the task's
	// step-ups and holds the follow-on tasks they produced.
	intent, resource string
	steps            *stepUps
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken string                     `json:"access_token"`
	TokenType   string                     `json:"token_type"`
	ExpiresIn   int64                      `json:"expires_in"`
	Scope       string                     `json:"scope"`
	Details     []wire.AuthorizationDetail `json:"authorization_details"`
	IDToken     string                     `json:"id_token"`
}

// Poll asks once whether the task was decided (CIBA token request). It
// returns the Task when approved, or an *Error: ErrPending and ErrSlowDown
// while waiting, ErrDenied, ErrExpired or ErrInvalidGrant when it ended
// without a token. Callers must not poll more often than p.Interval; Wait
// does it for them.
func (c *Client) Poll(ctx context.Context, p *Pending) (*Task, error) {
	var tr tokenResponse
	nonce := ""
	for attempt := 0; ; attempt++ {
		proof, err := p.dpop.Proof(http.MethodPost, c.meta.TokenEndpoint, dpop.ProofOptions{Nonce: nonce, Now: c.now()})
		if err != nil {
			return nil, err
		}
		form := url.Values{"grant_type": {grantTypeCIBA}, "auth_req_id": {p.ID}}
		resp, err := c.post(ctx, c.meta.TokenEndpoint, form, http.Header{"Dpop": {proof}}, &tr)
		var e *Error
		if attempt == 0 && errors.As(err, &e) && e.Code == dpop.CodeUseNonce && resp != nil && resp.Header.Get("DPoP-Nonce") != "" {
			// RFC 9449 §8: retry once with the server's nonce (and, since
			// assertions are single-use, a fresh assertion).
			nonce = resp.Header.Get("DPoP-Nonce")
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if tr.AccessToken == "" {
		return nil, errors.New("agent: writ's token response has no access_token")
	}
	if !strings.EqualFold(tr.TokenType, "DPoP") && c.meta.DPoPBoundAccessTokensRequired {
		return nil, fmt.Errorf("agent: writ returned a %s token where a DPoP-bound one was required", tr.TokenType)
	}
	return &Task{
		ID: p.ID, AccessToken: tr.AccessToken, TokenType: tr.TokenType,
		ExpiresAt: c.now().Add(time.Duration(tr.ExpiresIn) * time.Second),
		Scopes:    strings.Fields(tr.Scope), Details: tr.Details, IDToken: tr.IDToken,
		client: c, dpop: p.dpop, intent: p.intent, resource: p.resource, steps: cmp.Or(p.steps, newStepUps()),
	}, nil
}

// Progress is what Wait reports after each poll that did not end it.
type Progress struct {
	Polls     int           // polls so far
	Status    string        // "authorization_pending", "slow_down", or "retrying" after a failed poll
	Interval  time.Duration // the interval now kept (it grows on slow_down)
	Waited    time.Duration // since Wait began
	ExpiresAt time.Time     // when writ stops waiting for a decision
	Err       error         // the failure, when Status is "retrying"
}

// maxPollFailures is how many polls in a row may fail (network errors,
// 5xx) before Wait gives up. writ's 503 temporarily_unavailable (its store
// cannot write right now) is not counted: Wait keeps polling until the
// request's expiry.
const maxPollFailures = 5

// Wait polls until the operator decides, the request expires, or ctx
// ends. It keeps the interval writ asked for and adds 5 s for every
// slow_down (CIBA §11). progress, when not nil, is called after each
// undecided poll, from Wait's goroutine.
func (c *Client) Wait(ctx context.Context, p *Pending, progress func(Progress)) (*Task, error) {
	start := c.now()
	interval := p.Interval
	failures := 0
	for polls := 1; ; polls++ {
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		task, err := c.Poll(ctx, p)
		if err == nil {
			return task, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pr := Progress{Polls: polls, Waited: c.now().Sub(start), ExpiresAt: p.ExpiresAt}
		var e *Error
		switch {
		case errors.Is(err, ErrPending):
			failures = 0
			pr.Status = ErrPending.Code
		case errors.Is(err, ErrSlowDown):
			failures = 0
			interval += c.slowDownStep
			pr.Status = ErrSlowDown.Code
		case errors.As(err, &e) && e.Status < 500:
			return nil, err // a decision (denied, expired) or a refusal
		case errors.As(err, &e) && e.Code == "temporarily_unavailable" && !c.now().After(p.ExpiresAt):
			// writ is up but cannot write right now (a full disk): it
			// said so, and nothing was done; wait for it as for a decision.
			pr.Status, pr.Err = "retrying", err
		default:
			if failures++; failures >= maxPollFailures || c.now().After(p.ExpiresAt) {
				return nil, fmt.Errorf("agent: waiting for task %s: %w", short(p.ID), err)
			}
			pr.Status, pr.Err = "retrying", err
		}
		pr.Interval = interval
		c.log.Debug("task not decided yet", "task", short(p.ID), "status", pr.Status, "polls", polls)
		if progress != nil {
			progress(pr)
		}
	}
}

// RequestAndWait is Request followed by Wait.
func (c *Client) RequestAndWait(ctx context.Context, tr TaskRequest, progress func(Progress)) (*Task, error) {
	p, err := c.Request(ctx, tr)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, p, progress)
}

// FollowOn requests a task that goes on from t (its ParentID is t's id).
// The operator sees it as a difference from t's grant; if t's grant is
// revoked, the follow-on's is too.
func (t *Task) FollowOn(ctx context.Context, tr TaskRequest) (*Pending, error) {
	tr.ParentID = t.ID
	return t.client.Request(ctx, tr)
}

// JKT returns the thumbprint of the key the token is bound to (cnf.jkt).
func (t *Task) JKT() string { return t.dpop.JKT() }

// Transport returns an http.RoundTripper that presents the token to
// resource servers: "Authorization: DPoP <token>" with a fresh proof for
// every request (RFC 9449 §7), retrying once when a server asks for a
// nonce. base makes the requests (nil: the Client's transport).
func (t *Task) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = t.client.http.Transport
	}
	return &dpop.Transport{Base: base, Signer: t.dpop, Token: func() string { return t.AccessToken }}
}

// HTTPClient returns an http.Client whose requests carry the token.
func (t *Task) HTTPClient() *http.Client {
	return &http.Client{Transport: t.Transport(nil), Timeout: t.client.http.Timeout}
}

// Do sends req to a resource server with the token and a DPoP proof.
func (t *Task) Do(req *http.Request) (*http.Response, error) {
	return t.HTTPClient().Do(req)
}

// Done tells writ the task is finished: it revokes the token (RFC 7009),
// which completes the grant. Calling it twice is harmless.
func (t *Task) Done(ctx context.Context) error {
	return t.client.Revoke(ctx, t.AccessToken)
}

// Revoke revokes one of the agent's access tokens (RFC 7009), completing
// its grant. writ answers success for tokens it does not know, so a
// mistyped token is not reported.
func (c *Client) Revoke(ctx context.Context, accessToken string) error {
	endpoint := c.meta.RevocationEndpoint
	if endpoint == "" {
		return errors.New("agent: writ's metadata has no revocation endpoint")
	}
	form := url.Values{"token": {accessToken}, "token_type_hint": {"access_token"}}
	_, err := c.post(ctx, endpoint, form, nil, nil)
	return err
}

// Resume returns a Pending for a task requested earlier, perhaps by
// another process, to Poll or Wait on. Its token will be bound to
// Options.DPoPKey, or to a fresh key when none is set. interval zero
// means CIBA's default of 5 s.
func (c *Client) Resume(id string, interval time.Duration) (*Pending, error) {
	if id == "" {
		return nil, errors.New("agent: the task id (auth_req_id) is required")
	}
	signer, err := c.dpopSigner()
	if err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Pending{ID: id, Interval: interval, ExpiresAt: c.now().Add(wire.DefaultReviewDeadline), dpop: signer}, nil
}

// short shortens an auth_req_id for messages: its random end (writ's
// ids start with the time, alike for requests made together).
func short(id string) string {
	if len(id) > 10 {
		return "…" + id[len(id)-8:]
	}
	return id
}
