package store

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/writhq/writ/broker"
)

// The parts several stored kinds share. Their JSON tags are frozen: they
// are how version 0 spelled each field, whatever broker calls it today.

// The fewest bytes an element of each list of structs takes (one per
// field, more for nested structs), which bounds what a corrupt list length
// can make the decoder allocate.
const (
	minOperatorSize  = 7
	minTermsSize     = 4
	minDetailSize    = 7
	minEpochMarkSize = 3 + minOperatorSize
	minApprovalSize  = minOperatorSize + 3 + minTermsSize
)

// storedOperator is a broker.Operator as stored.
type storedOperator struct {
	Issuer        string    `json:"iss"`
	Subject       string    `json:"sub"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	AuthTime      time.Time `json:"auth_time"`
	Dev           bool      `json:"dev"`
}

func storedOperatorOf(o broker.Operator) storedOperator {
	return storedOperator{o.Issuer, o.Subject, o.Email, o.EmailVerified, o.Name, o.AuthTime, o.Dev}
}

func (s storedOperator) operator() broker.Operator {
	return broker.Operator{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, EmailVerified: s.EmailVerified,
		Name: s.Name, AuthTime: s.AuthTime, Dev: s.Dev}
}

func (s *storedOperator) encodeV1(e *encoder) {
	e.string(s.Issuer)
	e.string(s.Subject)
	e.string(s.Email)
	e.bool(s.EmailVerified)
	e.string(s.Name)
	e.time(s.AuthTime)
	e.bool(s.Dev)
}

func (s *storedOperator) decodeV1(d *decoder) {
	s.Issuer = d.string()
	s.Subject = d.string()
	s.Email = d.string()
	s.EmailVerified = d.bool()
	s.Name = d.string()
	s.AuthTime = d.time()
	s.Dev = d.bool()
}

// storedOperatorPtr and operatorPtr convert an optional operator.
func storedOperatorPtr(o *broker.Operator) *storedOperator {
	if o == nil {
		return nil
	}
	s := storedOperatorOf(*o)
	return &s
}

func (s *storedOperator) operatorPtr() *broker.Operator {
	if s == nil {
		return nil
	}
	o := s.operator()
	return &o
}

func encodeOptionalOperator(e *encoder, s *storedOperator) {
	if e.present(s != nil) {
		s.encodeV1(e)
	}
}

func decodeOptionalOperator(d *decoder) *storedOperator {
	if !d.present() {
		return nil
	}
	s := new(storedOperator)
	s.decodeV1(d)
	return s
}

// storedDetail is a broker.AuthorizationDetail as stored.
type storedDetail struct {
	Type       string   `json:"type"`
	Locations  []string `json:"locations"`
	Actions    []string `json:"actions"`
	Datatypes  []string `json:"datatypes"`
	Identifier string   `json:"identifier"`
	Privileges []string `json:"privileges"`
	Intent     string   `json:"intent"`
}

// storedTerms is a broker.Terms as stored.
type storedTerms struct {
	Scopes   []string       `json:"scopes"`
	Details  []storedDetail `json:"authorization_details"`
	Resource string         `json:"resource"`
	TTL      storedDuration `json:"ttl"`
}

func storedTermsOf(t broker.Terms) storedTerms {
	s := storedTerms{Scopes: t.Scopes, Resource: t.Resource, TTL: storedDuration(t.TTL)}
	if t.Details != nil {
		s.Details = make([]storedDetail, len(t.Details))
		for i, d := range t.Details {
			s.Details[i] = storedDetail{d.Type, d.Locations, d.Actions, d.Datatypes, d.Identifier, d.Privileges, d.Intent}
		}
	}
	return s
}

func (s storedTerms) terms() broker.Terms {
	t := broker.Terms{Scopes: s.Scopes, Resource: s.Resource, TTL: time.Duration(s.TTL)}
	if s.Details != nil {
		t.Details = make([]broker.AuthorizationDetail, len(s.Details))
		for i, d := range s.Details {
			t.Details[i] = broker.AuthorizationDetail{Type: d.Type, Locations: d.Locations, Actions: d.Actions,
				Datatypes: d.Datatypes, Identifier: d.Identifier, Privileges: d.Privileges, Intent: d.Intent}
		}
	}
	return t
}

func (s *storedTerms) encodeV1(e *encoder) {
	e.strings(s.Scopes)
	e.listLen(len(s.Details), s.Details == nil)
	for i := range s.Details {
		d := &s.Details[i]
		e.string(d.Type)
		e.strings(d.Locations)
		e.strings(d.Actions)
		e.strings(d.Datatypes)
		e.string(d.Identifier)
		e.strings(d.Privileges)
		e.string(d.Intent)
	}
	e.string(s.Resource)
	e.duration(time.Duration(s.TTL))
}

func (s *storedTerms) decodeV1(d *decoder) {
	s.Scopes = d.strings()
	if n, isNil := d.listLen(minDetailSize); !isNil {
		s.Details = make([]storedDetail, n)
		for i := range s.Details {
			x := &s.Details[i]
			x.Type = d.string()
			x.Locations = d.strings()
			x.Actions = d.strings()
			x.Datatypes = d.strings()
			x.Identifier = d.string()
			x.Privileges = d.strings()
			x.Intent = d.string()
		}
	}
	s.Resource = d.string()
	s.TTL = storedDuration(d.duration())
}

// storedEpochMark is a broker.EpochMark as stored.
type storedEpochMark struct {
	Epoch  uint64         `json:"epoch"`
	At     time.Time      `json:"at"`
	By     storedOperator `json:"by"`
	Reason string         `json:"reason"`
}

func storedEpochMarksOf(marks []broker.EpochMark) []storedEpochMark {
	if marks == nil {
		return nil
	}
	s := make([]storedEpochMark, len(marks))
	for i, m := range marks {
		s[i] = storedEpochMark{m.Epoch, m.At, storedOperatorOf(m.By), m.Reason}
	}
	return s
}

func epochMarks(s []storedEpochMark) []broker.EpochMark {
	if s == nil {
		return nil
	}
	marks := make([]broker.EpochMark, len(s))
	for i, m := range s {
		marks[i] = broker.EpochMark{Epoch: m.Epoch, At: m.At, By: m.By.operator(), Reason: m.Reason}
	}
	return marks
}

func encodeEpochMarks(e *encoder, marks []storedEpochMark) {
	e.listLen(len(marks), marks == nil)
	for i := range marks {
		m := &marks[i]
		e.uint(m.Epoch)
		e.time(m.At)
		m.By.encodeV1(e)
		e.string(m.Reason)
	}
}

func decodeEpochMarks(d *decoder) []storedEpochMark {
	n, isNil := d.listLen(minEpochMarkSize)
	if isNil {
		return nil
	}
	marks := make([]storedEpochMark, n)
	for i := range marks {
		m := &marks[i]
		m.Epoch = d.uint()
		m.At = d.time()
		m.By.decodeV1(d)
		m.Reason = d.string()
	}
	return marks
}

// storedDuration is a time.Duration as stored. Version 0 wrote durations
// first as JSON numbers (nanoseconds), later as Go duration strings ("15m");
// both read.
type storedDuration time.Duration

func (x *storedDuration) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*x = 0
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*x = storedDuration(d)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration %s: %w", b, err)
		}
		if v, err := n.Int64(); err == nil {
			*x = storedDuration(v)
			return nil
		}
		// As version 0's reader did: a float64 of nanoseconds.
		f, err := n.Float64()
		if err != nil || f != f || f < math.MinInt64 || f >= math.MaxInt64 {
			return fmt.Errorf("duration %s is not a number of nanoseconds", b)
		}
		*x = storedDuration(f)
	}
	return nil
}

// storedRisk is a broker.Risk as stored: its number, and in version 0's
// JSON its name.
type storedRisk int64

// riskNamesV0 are the names version 0 wrote for each risk.
var riskNamesV0 = map[string]storedRisk{"low": 1, "medium": 2, "high": 3, "critical": 4}

func (r *storedRisk) UnmarshalText(b []byte) error {
	v, ok := riskNamesV0[string(b)]
	if !ok {
		return fmt.Errorf("unknown risk %q", b)
	}
	*r = v
	return nil
}

// storedPolicy is a broker.PolicyResult as stored.
type storedPolicy struct {
	Verdict          string         `json:"verdict"`
	Risk             storedRisk     `json:"risk"`
	Trace            []string       `json:"trace"`
	Rule             string         `json:"rule"`
	Reason           string         `json:"reason"`
	AutoApprove      bool           `json:"auto_approve"`
	MaxTTL           storedDuration `json:"max_ttl"`
	RequireApprovals int64          `json:"require_approvals"`
}

func storedPolicyOf(p *broker.PolicyResult) *storedPolicy {
	if p == nil {
		return nil
	}
	return &storedPolicy{p.Verdict, storedRisk(p.Risk), p.Trace, p.Rule, p.Reason, p.AutoApprove, storedDuration(p.MaxTTL), int64(p.RequireApprovals)}
}

func (s *storedPolicy) policy() *broker.PolicyResult {
	if s == nil {
		return nil
	}
	return &broker.PolicyResult{Verdict: s.Verdict, Risk: broker.Risk(s.Risk), Trace: s.Trace, Rule: s.Rule,
		Reason: s.Reason, AutoApprove: s.AutoApprove, MaxTTL: time.Duration(s.MaxTTL), RequireApprovals: int(s.RequireApprovals)}
}

func (s *storedPolicy) encodeV1(e *encoder) {
	e.string(s.Verdict)
	e.int(int64(s.Risk))
	e.strings(s.Trace)
	e.string(s.Rule)
	e.string(s.Reason)
	e.bool(s.AutoApprove)
	e.duration(time.Duration(s.MaxTTL))
	e.int(s.RequireApprovals)
}

func (s *storedPolicy) decodeV1(d *decoder) {
	s.Verdict = d.string()
	s.Risk = storedRisk(d.intN())
	s.Trace = d.strings()
	s.Rule = d.string()
	s.Reason = d.string()
	s.AutoApprove = d.bool()
	s.MaxTTL = storedDuration(d.duration())
	s.RequireApprovals = int64(d.intN())
}

// storedApproval is a broker.Approval as stored.
type storedApproval struct {
	Operator storedOperator `json:"operator"`
	At       time.Time      `json:"at"`
	Kind     string         `json:"kind"`
	Terms    storedTerms    `json:"terms"`
	Reason   string         `json:"reason"`
}

func storedApprovalsOf(as []broker.Approval) []storedApproval {
	if as == nil {
		return nil
	}
	s := make([]storedApproval, len(as))
	for i, a := range as {
		s[i] = storedApproval{storedOperatorOf(a.Operator), a.At, string(a.Kind), storedTermsOf(a.Terms), a.Reason}
	}
	return s
}

func approvals(s []storedApproval) []broker.Approval {
	if s == nil {
		return nil
	}
	as := make([]broker.Approval, len(s))
	for i, a := range s {
		as[i] = broker.Approval{Operator: a.Operator.operator(), At: a.At, Kind: broker.DecisionKind(a.Kind),
			Terms: a.Terms.terms(), Reason: a.Reason}
	}
	return as
}

func encodeApprovals(e *encoder, as []storedApproval) {
	e.listLen(len(as), as == nil)
	for i := range as {
		a := &as[i]
		a.Operator.encodeV1(e)
		e.time(a.At)
		e.string(a.Kind)
		a.Terms.encodeV1(e)
		e.string(a.Reason)
	}
}

func decodeApprovals(d *decoder) []storedApproval {
	n, isNil := d.listLen(minApprovalSize)
	if isNil {
		return nil
	}
	as := make([]storedApproval, n)
	for i := range as {
		a := &as[i]
		a.Operator.decodeV1(d)
		a.At = d.time()
		a.Kind = d.string()
		a.Terms.decodeV1(d)
		a.Reason = d.string()
	}
	return as
}
