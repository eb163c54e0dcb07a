package store

import (
	"time"

	"github.com/writhq/writ/broker"
)

// storedRequest is a broker.TaskRequest as stored (kind 'r').
type storedRequest struct {
	ID         string           `json:"id"`
	AgentID    string           `json:"agent_id"`
	LoginHint  string           `json:"login_hint"`
	Intent     string           `json:"intent"`
	Terms      storedTerms      `json:"terms"`
	ParentID   string           `json:"parent_id"`
	State      string           `json:"state"`
	CreatedAt  time.Time        `json:"created_at"`
	Deadline   time.Time        `json:"deadline"`
	ClosedAt   time.Time        `json:"closed_at"`
	DecisionID string           `json:"decision_id"`
	GrantID    string           `json:"grant_id"`
	Interval   storedDuration   `json:"interval"`
	LastPoll   time.Time        `json:"last_poll"`
	Policy     *storedPolicy    `json:"policy"`
	Approvals  []storedApproval `json:"approvals"`
}

func storedRequestOf(r *broker.TaskRequest) storedRequest {
	return storedRequest{
		ID: r.ID, AgentID: r.AgentID, LoginHint: r.LoginHint, Intent: r.Intent, Terms: storedTermsOf(r.Terms),
		ParentID: r.ParentID, State: string(r.State), CreatedAt: r.CreatedAt, Deadline: r.Deadline, ClosedAt: r.ClosedAt,
		DecisionID: r.DecisionID, GrantID: r.GrantID, Interval: storedDuration(r.Interval), LastPoll: r.LastPoll,
		Policy: storedPolicyOf(r.Policy), Approvals: storedApprovalsOf(r.Approvals),
	}
}

func (s *storedRequest) request() *broker.TaskRequest {
	return &broker.TaskRequest{
		ID: s.ID, AgentID: s.AgentID, LoginHint: s.LoginHint, Intent: s.Intent, Terms: s.Terms.terms(),
		ParentID: s.ParentID, State: broker.RequestState(s.State), CreatedAt: s.CreatedAt, Deadline: s.Deadline, ClosedAt: s.ClosedAt,
		DecisionID: s.DecisionID, GrantID: s.GrantID, Interval: time.Duration(s.Interval), LastPoll: s.LastPoll,
		Policy: s.Policy.policy(), Approvals: approvals(s.Approvals),
	}
}

func (s *storedRequest) encodeV1(e *encoder) {
	e.string(s.ID)
	e.string(s.AgentID)
	e.string(s.LoginHint)
	e.string(s.Intent)
	s.Terms.encodeV1(e)
	e.string(s.ParentID)
	e.string(s.State)
	e.time(s.CreatedAt)
	e.time(s.Deadline)
	e.time(s.ClosedAt)
	e.string(s.DecisionID)
	e.string(s.GrantID)
	e.duration(time.Duration(s.Interval))
	e.time(s.LastPoll)
	if e.present(s.Policy != nil) {
		s.Policy.encodeV1(e)
	}
	encodeApprovals(e, s.Approvals)
}

func (s *storedRequest) decodeV1(d *decoder) {
	s.ID = d.string()
	s.AgentID = d.string()
	s.LoginHint = d.string()
	s.Intent = d.string()
	s.Terms.decodeV1(d)
	s.ParentID = d.string()
	s.State = d.string()
	s.CreatedAt = d.time()
	s.Deadline = d.time()
	s.ClosedAt = d.time()
	s.DecisionID = d.string()
	s.GrantID = d.string()
	s.Interval = storedDuration(d.duration())
	s.LastPoll = d.time()
	if d.present() {
		s.Policy = new(storedPolicy)
		s.Policy.decodeV1(d)
	}
	s.Approvals = decodeApprovals(d)
}

// read fills s from data, the value of request id in any version.
func (s *storedRequest) read(id string, data []byte) error {
	d, v0, err := openStored(kindRequest, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindRequest, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeRequest(r *broker.TaskRequest) []byte {
	s := storedRequestOf(r)
	e := newStoredEncoder(kindRequest)
	s.encodeV1(e)
	return e.done()
}

func decodeRequest(id string, data []byte) (*broker.TaskRequest, error) {
	var s storedRequest
	if err := s.read(id, data); err != nil {
		return nil, err
	}
	return s.request(), nil
}

// storedDecision is a broker.Decision as stored (kind 'd').
type storedDecision struct {
	ID        string         `json:"id"`
	RequestID string         `json:"request_id"`
	Kind      string         `json:"kind"`
	Operator  storedOperator `json:"operator"`
	Reason    string         `json:"reason"`
	At        time.Time      `json:"at"`
	Requested storedTerms    `json:"requested"`
	Granted   *storedTerms   `json:"granted"`
}

func storedDecisionOf(x *broker.Decision) storedDecision {
	s := storedDecision{ID: x.ID, RequestID: x.RequestID, Kind: string(x.Kind), Operator: storedOperatorOf(x.Operator),
		Reason: x.Reason, At: x.At, Requested: storedTermsOf(x.Requested)}
	if x.Granted != nil {
		g := storedTermsOf(*x.Granted)
		s.Granted = &g
	}
	return s
}

func (s *storedDecision) decision() *broker.Decision {
	x := &broker.Decision{ID: s.ID, RequestID: s.RequestID, Kind: broker.DecisionKind(s.Kind), Operator: s.Operator.operator(),
		Reason: s.Reason, At: s.At, Requested: s.Requested.terms()}
	if s.Granted != nil {
		g := s.Granted.terms()
		x.Granted = &g
	}
	return x
}

func (s *storedDecision) encodeV1(e *encoder) {
	e.string(s.ID)
	e.string(s.RequestID)
	e.string(s.Kind)
	s.Operator.encodeV1(e)
	e.string(s.Reason)
	e.time(s.At)
	s.Requested.encodeV1(e)
	if e.present(s.Granted != nil) {
		s.Granted.encodeV1(e)
	}
}

func (s *storedDecision) decodeV1(d *decoder) {
	s.ID = d.string()
	s.RequestID = d.string()
	s.Kind = d.string()
	s.Operator.decodeV1(d)
	s.Reason = d.string()
	s.At = d.time()
	s.Requested.decodeV1(d)
	if d.present() {
		s.Granted = new(storedTerms)
		s.Granted.decodeV1(d)
	}
}

// read fills s from data, the value of decision id in any version.
func (s *storedDecision) read(id string, data []byte) error {
	d, v0, err := openStored(kindDecision, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindDecision, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeDecision(x *broker.Decision) []byte {
	s := storedDecisionOf(x)
	e := newStoredEncoder(kindDecision)
	s.encodeV1(e)
	return e.done()
}

func decodeDecision(id string, data []byte) (*broker.Decision, error) {
	var s storedDecision
	if err := s.read(id, data); err != nil {
		return nil, err
	}
	return s.decision(), nil
}
