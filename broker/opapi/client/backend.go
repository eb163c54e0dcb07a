package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
)

// The methods below are the console's Backend over HTTP. The operator
// argument of the actions is ignored: the server acts as the operator its
// token names, and audits the action under that operator.

// quick bounds the calls the console makes without a context of its own.
const quick = 5 * time.Second

// Config returns the configuration loaded at SignIn.
func (c *Client) Config() *broker.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		return &broker.Config{Limits: broker.DefaultLimits}
	}
	return c.cfg
}

// IssuerState asks the server, and answers the last known state when it
// cannot be reached.
func (c *Client) IssuerState() broker.IssuerState {
	return c.IssuerStatus().IssuerState
}

// IssuerStatus asks the server for the issuer state and the store's write
// health, and answers the last known when it cannot be reached. A server
// that does not say (older than the store's health) is taken as writable.
func (c *Client) IssuerStatus() opapi.IssuerStatus {
	ctx, cancel := context.WithTimeout(context.Background(), quick)
	defer cancel()
	_, _ = c.Issuer(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.store // a copy: the stream's events change c.store under c.mu
	return opapi.IssuerStatus{IssuerState: c.issuer, Store: &h}
}

// Issuer asks the server for the issuer state and the store's write
// health, and keeps them as the last known; unlike IssuerStatus it fails
// when the server cannot say, for callers that must not judge by a stale
// or zero state.
func (c *Client) Issuer(ctx context.Context) (opapi.IssuerStatus, error) {
	var st opapi.IssuerStatus
	if err := c.call(ctx, http.MethodGet, "/v1/issuer", nil, &st, false); err != nil {
		return opapi.IssuerStatus{}, err
	}
	c.mu.Lock()
	c.issuer = st.IssuerState
	if st.Store != nil {
		c.store = *st.Store
	}
	c.mu.Unlock()
	return st, nil
}

// StoreHealth is whether the server's store can write, as last known: from
// IssuerStatus and from the store health events of the stream. It makes no
// call of its own, so the console may ask it while drawing.
func (c *Client) StoreHealth() broker.StoreHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.store
}

// Agents asks the server, and answers the last known list when it cannot
// be reached.
func (c *Client) Agents() []broker.AgentView {
	ctx, cancel := context.WithTimeout(context.Background(), quick)
	defer cancel()
	var as []opapi.Agent
	if err := c.call(ctx, http.MethodGet, "/v1/agents", nil, &as, false); err == nil {
		cfg := c.Config()
		views := make([]broker.AgentView, 0, len(as))
		for _, a := range as {
			ag := broker.Agent{ID: a.ID, Name: a.Name, Owner: a.Owner, Ceiling: a.Ceiling, MaxTTL: time.Duration(a.MaxTTL),
				Keys: a.Keys, Workload: a.Workload}
			if known, ok := cfg.Agent(a.ID); ok {
				ag = *known
			}
			views = append(views, broker.AgentView{Agent: ag, State: a.State})
		}
		c.mu.Lock()
		c.agents = views
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agents
}

// AgentList returns the agents as the server shows them.
func (c *Client) AgentList(ctx context.Context) ([]opapi.Agent, error) {
	var as []opapi.Agent
	err := c.call(ctx, http.MethodGet, "/v1/agents", nil, &as, false)
	return as, err
}

// Pending returns the requests waiting for review.
func (c *Client) Pending(ctx context.Context) ([]*broker.TaskRequest, error) {
	var out []*broker.TaskRequest
	err := c.call(ctx, http.MethodGet, "/v1/requests", nil, &out, false)
	return out, err
}

// Grants returns active grants and those ended within recent.
func (c *Client) Grants(ctx context.Context, recent time.Duration) ([]*broker.Grant, error) {
	var out []*broker.Grant
	err := c.call(ctx, http.MethodGet, "/v1/grants?recent="+url.QueryEscape(recent.String()), nil, &out, false)
	return out, err
}

// Request returns one request.
func (c *Client) Request(ctx context.Context, id string) (*broker.TaskRequest, error) {
	var out broker.TaskRequest
	if err := c.call(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(id), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// Grant returns one grant.
func (c *Client) Grant(ctx context.Context, id string) (*broker.Grant, error) {
	var out broker.Grant
	if err := c.call(ctx, http.MethodGet, "/v1/grants/"+url.PathEscape(id), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// Decision returns one decision.
func (c *Client) Decision(ctx context.Context, id string) (*broker.Decision, error) {
	var out broker.Decision
	if err := c.call(ctx, http.MethodGet, "/v1/decisions/"+url.PathEscape(id), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit returns a page of audit entries, newest first.
func (c *Client) Audit(ctx context.Context, f broker.AuditFilter) ([]*broker.AuditEntry, error) {
	q := url.Values{}
	if f.Before > 0 {
		q.Set("before", strconv.FormatUint(f.Before, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(min(f.Limit, 1000)))
	}
	if f.AgentID != "" {
		q.Set("agent", f.AgentID)
	}
	if f.GrantID != "" {
		q.Set("grant", f.GrantID)
	}
	for _, k := range f.Kinds {
		q.Add("kind", string(k))
	}
	var out []*broker.AuditEntry
	err := c.call(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &out, false)
	return out, err
}

// VerifyAudit verifies the audit chain at the server; a broken chain is a
// *broker.ChainError-like error naming the entry.
func (c *Client) VerifyAudit(ctx context.Context) (uint64, error) {
	var out opapi.AuditVerify
	if err := c.call(ctx, http.MethodGet, "/v1/audit/verify", nil, &out, false); err != nil {
		return 0, err
	}
	if !out.OK {
		return out.Entries, &broker.Error{Code: broker.EINTERNAL, Message: out.Error}
	}
	return out.Entries, nil
}

// Policy returns the policy in force at the server.
func (c *Client) Policy(ctx context.Context) (opapi.PolicyStatus, error) {
	var out opapi.PolicyStatus
	err := c.call(ctx, http.MethodGet, "/v1/policy", nil, &out, false)
	return out, err
}

// Decide approves, narrows or denies, with the full answer.
func (c *Client) Decide(ctx context.Context, kind broker.DecisionKind, requestID string, in opapi.DecideInput) (*opapi.DecisionResult, error) {
	var out opapi.DecisionResult
	if err := c.call(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(requestID)+"/"+string(kind), in, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Approve approves a request as proposed; a nil grant means the approval
// was recorded and policy needs more approvers.
func (c *Client) Approve(ctx context.Context, _ broker.Operator, requestID string) (*broker.Grant, error) {
	res, err := c.Decide(ctx, broker.DecisionApprove, requestID, opapi.DecideInput{})
	if err != nil {
		return nil, err
	}
	return res.Grant, nil
}

// Narrow grants a request with narrower terms.
func (c *Client) Narrow(ctx context.Context, _ broker.Operator, requestID string, granted broker.Terms, reason string) (*broker.Grant, error) {
	res, err := c.Decide(ctx, broker.DecisionNarrow, requestID, opapi.DecideInput{Terms: &granted, Reason: reason})
	if err != nil {
		return nil, err
	}
	return res.Grant, nil
}

// Deny refuses a request.
func (c *Client) Deny(ctx context.Context, _ broker.Operator, requestID, reason string) (*broker.Decision, error) {
	res, err := c.Decide(ctx, broker.DecisionDeny, requestID, opapi.DecideInput{Reason: reason})
	if err != nil {
		return nil, err
	}
	return res.Decision, nil
}

// RevokeGrant revokes one grant, with the full answer (Already when it
// had been revoked before).
func (c *Client) RevokeGrant(ctx context.Context, grantID, reason string) (*opapi.RevocationResult, error) {
	var out opapi.RevocationResult
	err := c.call(ctx, http.MethodPost, "/v1/grants/"+url.PathEscape(grantID)+"/revoke", opapi.RevokeInput{Reason: reason}, &out, true)
	return &out, err
}

// Revoke revokes one grant; revoking one already revoked succeeds.
func (c *Client) Revoke(ctx context.Context, _ broker.Operator, grantID, reason string) (*broker.Revocation, error) {
	res, err := c.RevokeGrant(ctx, grantID, reason)
	if err != nil {
		return nil, err
	}
	return res.Revocation, nil
}

// RevokeAgent revokes everything an agent holds, and quarantines it if asked.
func (c *Client) RevokeAgent(ctx context.Context, _ broker.Operator, agentID, reason string, quarantine bool) (*broker.Revocation, error) {
	var out opapi.RevocationResult
	err := c.call(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(agentID)+"/revoke", opapi.RevokeInput{Reason: reason, Quarantine: quarantine}, &out, true)
	return out.Revocation, err
}

// Release lifts an agent's quarantine.
func (c *Client) Release(ctx context.Context, _ broker.Operator, agentID string) error {
	return c.call(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(agentID)+"/release", nil, nil, true)
}

// RevokeAll revokes every grant and, with freeze, stops issuance.
func (c *Client) RevokeAll(ctx context.Context, _ broker.Operator, reason string, freeze bool) (*broker.Revocation, error) {
	var out opapi.RevocationResult
	err := c.call(ctx, http.MethodPost, "/v1/revoke-all", opapi.RevokeInput{Reason: reason, Freeze: &freeze}, &out, true)
	return out.Revocation, err
}

// Freeze stops issuance.
func (c *Client) Freeze(ctx context.Context, reason string) error {
	return c.call(ctx, http.MethodPost, "/v1/freeze", opapi.RevokeInput{Reason: reason}, nil, true)
}

// Unfreeze lets issuance resume.
func (c *Client) Unfreeze(ctx context.Context, _ broker.Operator, reason string) error {
	return c.call(ctx, http.MethodPost, "/v1/unfreeze", opapi.RevokeInput{Reason: reason}, nil, true)
}

// Standing returns the standing approvals, the shadow rules' hits and the
// longest standing approval the server accepts.
func (c *Client) Standing(ctx context.Context) (*opapi.StandingStatus, error) {
	var out opapi.StandingStatus
	if err := c.call(ctx, http.MethodGet, "/v1/standing", nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateStanding makes a standing approval from the approval of requestID.
func (c *Client) CreateStanding(ctx context.Context, _ broker.Operator, requestID string, d time.Duration, reason string) (*broker.StandingApproval, error) {
	var out broker.StandingApproval
	in := opapi.StandingInput{For: d.String(), Reason: reason}
	if err := c.call(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(requestID)+"/standing", in, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeStanding ends a standing approval.
func (c *Client) RevokeStanding(ctx context.Context, _ broker.Operator, id, reason string) (*broker.StandingApproval, error) {
	var out broker.StandingApproval
	if err := c.call(ctx, http.MethodPost, "/v1/standing/"+url.PathEscape(id)+"/revoke", opapi.RevokeInput{Reason: reason}, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
