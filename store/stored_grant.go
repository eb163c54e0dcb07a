package store

import (
	"time"

	"github.com/writhq/writ/broker"
)

// storedGrant is a broker.Grant as stored (kind 'g').
type storedGrant struct {
	ID               string          `json:"id"`
	RequestID        string          `json:"request_id"`
	DecisionID       string          `json:"decision_id"`
	AgentID          string          `json:"agent_id"`
	ParentID         string          `json:"parent_id"`
	Children         []string        `json:"children"`
	Intent           string          `json:"intent"`
	Terms            storedTerms     `json:"terms"`
	Approver         storedOperator  `json:"approver"`
	State            string          `json:"state"`
	CreatedAt        time.Time       `json:"created_at"`
	ExpiresAt        time.Time       `json:"expires_at"`
	EndedAt          time.Time       `json:"ended_at"`
	EndReason        string          `json:"end_reason"`
	EndedBy          *storedOperator `json:"ended_by"`
	EndKind          string          `json:"end_kind"`
	EndParent        string          `json:"end_parent"`
	Epoch            uint64          `json:"epoch"`
	AgentEpoch       uint64          `json:"agent_epoch"`
	TokenJTI         string          `json:"token_jti"`
	JKT              string          `json:"jkt"`
	Uses             int64           `json:"uses"`
	LastUse          time.Time       `json:"last_use"`
	RefusedAfterEnd  int64           `json:"refused_after_end"`
	AcceptedAfterEnd int64           `json:"accepted_after_end"`
}

func storedGrantOf(g *broker.Grant) storedGrant {
	return storedGrant{
		ID: g.ID, RequestID: g.RequestID, DecisionID: g.DecisionID, AgentID: g.AgentID, ParentID: g.ParentID,
		Children: g.Children, Intent: g.Intent, Terms: storedTermsOf(g.Terms), Approver: storedOperatorOf(g.Approver),
		State: string(g.State), CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt, EndedAt: g.EndedAt,
		EndReason: g.EndReason, EndedBy: storedOperatorPtr(g.EndedBy), EndKind: string(g.EndKind), EndParent: g.EndParent,
		Epoch: g.Epoch, AgentEpoch: g.AgentEpoch, TokenJTI: g.TokenJTI, JKT: g.JKT,
		Uses: g.Uses, LastUse: g.LastUse, RefusedAfterEnd: g.RefusedAfterEnd, AcceptedAfterEnd: g.AcceptedAfterEnd,
	}
}

func (s *storedGrant) grant() *broker.Grant {
	return &broker.Grant{
		ID: s.ID, RequestID: s.RequestID, DecisionID: s.DecisionID, AgentID: s.AgentID, ParentID: s.ParentID,
		Children: s.Children, Intent: s.Intent, Terms: s.Terms.terms(), Approver: s.Approver.operator(),
		State: broker.GrantState(s.State), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, EndedAt: s.EndedAt,
		EndReason: s.EndReason, EndedBy: s.EndedBy.operatorPtr(), EndKind: broker.EndKind(s.EndKind), EndParent: s.EndParent,
		Epoch: s.Epoch, AgentEpoch: s.AgentEpoch, TokenJTI: s.TokenJTI, JKT: s.JKT,
		Uses: s.Uses, LastUse: s.LastUse, RefusedAfterEnd: s.RefusedAfterEnd, AcceptedAfterEnd: s.AcceptedAfterEnd,
	}
}

func (s *storedGrant) encodeV1(e *encoder) {
	e.string(s.ID)
	e.string(s.RequestID)
	e.string(s.DecisionID)
	e.string(s.AgentID)
	e.string(s.ParentID)
	e.strings(s.Children)
	e.string(s.Intent)
	s.Terms.encodeV1(e)
	s.Approver.encodeV1(e)
	e.string(s.State)
	e.time(s.CreatedAt)
	e.time(s.ExpiresAt)
	e.time(s.EndedAt)
	e.string(s.EndReason)
	encodeOptionalOperator(e, s.EndedBy)
	e.string(s.EndKind)
	e.string(s.EndParent)
	e.uint(s.Epoch)
	e.uint(s.AgentEpoch)
	e.string(s.TokenJTI)
	e.string(s.JKT)
	e.int(s.Uses)
	e.time(s.LastUse)
	e.int(s.RefusedAfterEnd)
	e.int(s.AcceptedAfterEnd)
}

func (s *storedGrant) decodeV1(d *decoder) {
	s.ID = d.string()
	s.RequestID = d.string()
	s.DecisionID = d.string()
	s.AgentID = d.string()
	s.ParentID = d.string()
	s.Children = d.strings()
	s.Intent = d.string()
	s.Terms.decodeV1(d)
	s.Approver.decodeV1(d)
	s.State = d.string()
	s.CreatedAt = d.time()
	s.ExpiresAt = d.time()
	s.EndedAt = d.time()
	s.EndReason = d.string()
	s.EndedBy = decodeOptionalOperator(d)
	s.EndKind = d.string()
	s.EndParent = d.string()
	s.Epoch = d.uint()
	s.AgentEpoch = d.uint()
	s.TokenJTI = d.string()
	s.JKT = d.string()
	s.Uses = d.int()
	s.LastUse = d.time()
	s.RefusedAfterEnd = d.int()
	s.AcceptedAfterEnd = d.int()
}

// read fills s from data, the value of grant id in any version.
func (s *storedGrant) read(id string, data []byte) error {
	d, v0, err := openStored(kindGrant, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindGrant, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeGrant(g *broker.Grant) []byte {
	s := storedGrantOf(g)
	e := newStoredEncoder(kindGrant)
	s.encodeV1(e)
	return e.done()
}

func decodeGrant(id string, data []byte) (*broker.Grant, error) {
	var s storedGrant
	if err := s.read(id, data); err != nil {
		return nil, err
	}
	return s.grant(), nil
}

// storedToken is a broker.Token as stored (kind 't').
type storedToken struct {
	JTI       string    `json:"jti"`
	GrantID   string    `json:"grant_id"`
	AgentID   string    `json:"agent_id"`
	KeyID     string    `json:"kid"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"`
	JKT       string    `json:"jkt"`
}

func storedTokenOf(k *broker.Token) storedToken {
	return storedToken{k.JTI, k.GrantID, k.AgentID, k.KeyID, k.IssuedAt, k.ExpiresAt, k.JKT}
}

func (s *storedToken) token() *broker.Token {
	return &broker.Token{JTI: s.JTI, GrantID: s.GrantID, AgentID: s.AgentID, KeyID: s.KeyID,
		IssuedAt: s.IssuedAt, ExpiresAt: s.ExpiresAt, JKT: s.JKT}
}

func (s *storedToken) encodeV1(e *encoder) {
	e.string(s.JTI)
	e.string(s.GrantID)
	e.string(s.AgentID)
	e.string(s.KeyID)
	e.time(s.IssuedAt)
	e.time(s.ExpiresAt)
	e.string(s.JKT)
}

func (s *storedToken) decodeV1(d *decoder) {
	s.JTI = d.string()
	s.GrantID = d.string()
	s.AgentID = d.string()
	s.KeyID = d.string()
	s.IssuedAt = d.time()
	s.ExpiresAt = d.time()
	s.JKT = d.string()
}

// read fills s from data, the value of token id in any version.
func (s *storedToken) read(id string, data []byte) error {
	d, v0, err := openStored(kindToken, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindToken, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeToken(k *broker.Token) []byte {
	s := storedTokenOf(k)
	e := newStoredEncoder(kindToken)
	s.encodeV1(e)
	return e.done()
}

func decodeToken(id string, data []byte) (*broker.Token, error) {
	var s storedToken
	if err := s.read(id, data); err != nil {
		return nil, err
	}
	return s.token(), nil
}

// storedRevocation is a broker.Revocation as stored (kind 'v').
type storedRevocation struct {
	ID       string         `json:"id"`
	Scope    string         `json:"scope"`
	Target   string         `json:"target"`
	Operator storedOperator `json:"operator"`
	Reason   string         `json:"reason"`
	At       time.Time      `json:"at"`
	Epoch    uint64         `json:"epoch"`
	Freeze   bool           `json:"freeze"`
	Grants   int64          `json:"grants"`
}

func storedRevocationOf(r *broker.Revocation) storedRevocation {
	return storedRevocation{r.ID, string(r.Scope), r.Target, storedOperatorOf(r.Operator), r.Reason, r.At, r.Epoch, r.Freeze, int64(r.Grants)}
}

func (s *storedRevocation) revocation() *broker.Revocation {
	return &broker.Revocation{ID: s.ID, Scope: broker.RevocationScope(s.Scope), Target: s.Target, Operator: s.Operator.operator(),
		Reason: s.Reason, At: s.At, Epoch: s.Epoch, Freeze: s.Freeze, Grants: int(s.Grants)}
}

func (s *storedRevocation) encodeV1(e *encoder) {
	e.string(s.ID)
	e.string(s.Scope)
	e.string(s.Target)
	s.Operator.encodeV1(e)
	e.string(s.Reason)
	e.time(s.At)
	e.uint(s.Epoch)
	e.bool(s.Freeze)
	e.int(s.Grants)
}

func (s *storedRevocation) decodeV1(d *decoder) {
	s.ID = d.string()
	s.Scope = d.string()
	s.Target = d.string()
	s.Operator.decodeV1(d)
	s.Reason = d.string()
	s.At = d.time()
	s.Epoch = d.uint()
	s.Freeze = d.bool()
	s.Grants = int64(d.intN())
}

// read fills s from data, the value of revocation id in any version.
func (s *storedRevocation) read(id string, data []byte) error {
	d, v0, err := openStored(kindRevocation, id, data)
	switch {
	case err != nil:
		return err
	case v0:
		return decodeV0(kindRevocation, id, data, s)
	}
	s.decodeV1(&d)
	return d.close()
}

func encodeRevocation(r *broker.Revocation) []byte {
	s := storedRevocationOf(r)
	e := newStoredEncoder(kindRevocation)
	s.encodeV1(e)
	return e.done()
}

func decodeRevocation(id string, data []byte) (*broker.Revocation, error) {
	var s storedRevocation
	if err := s.read(id, data); err != nil {
		return nil, err
	}
	return s.revocation(), nil
}
