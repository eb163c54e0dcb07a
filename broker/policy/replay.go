package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// Past outcomes of a request, as the audit log records them.
const (
	OutcomeRefused      = "refused by policy"
	OutcomeAutoApproved = "auto-approved"
	OutcomeApproved     = "approved by a person"
	OutcomeDenied       = "denied by a person"
	OutcomeUndecided    = "reviewed, never decided" // expired, cancelled or still pending
)

// What a candidate policy would do.
const (
	WouldRefuse      = "refused by policy"
	WouldAutoApprove = "auto-approved"
	WouldReview      = "reviewed by a person"
)

// ReplayReport is what a candidate policy would have changed over the
// audit log: each flip (a past outcome that would now differ) grouped by
// from and to, with the rules responsible and the request ids.
type ReplayReport struct {
	Policy      string    `json:"policy"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until,omitzero"`
	Evaluated   int       `json:"evaluated"`
	Unchanged   int       `json:"unchanged"`
	Flips       []Flip    `json:"flips"`
	ShadowHits  int       `json:"shadow_hits,omitempty"`
	Unevaluable int       `json:"unevaluable,omitempty"` // entries whose data could not be read
}

// Flip is one kind of change: From a past outcome To what the candidate
// would do, for Count requests.
type Flip struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Count    int      `json:"count"`
	Rules    []string `json:"rules"`    // rules of the candidate (or, marked "(no longer matches)", of the old policy) responsible
	Requests []string `json:"requests"` // RequestRef of each request; refused requests, never stored, are "audit#<seq>"
}

// RequestRef is how a replay names a request: its id shortened
// (broker.ShortID), which is the agent's auth_req_id and so never printed
// in full.
func RequestRef(id string) string {
	if strings.HasPrefix(id, "audit#") {
		return id
	}
	return broker.ShortID(id)
}

// Changed reports whether anything would change.
func (r *ReplayReport) Changed() int {
	n := 0
	for _, f := range r.Flips {
		n += f.Count
	}
	return n
}

// Summary is the report in one line, for the console's banner.
func (r *ReplayReport) Summary() string {
	if len(r.Flips) == 0 {
		return fmt.Sprintf("replay: %d requests since %s, none would change", r.Evaluated, r.Since.UTC().Format("Jan 2 15:04"))
	}
	parts := make([]string, 0, len(r.Flips))
	for _, f := range r.Flips {
		parts = append(parts, fmt.Sprintf("%d %s → %s", f.Count, f.From, f.To))
	}
	return fmt.Sprintf("replay: %d of %d requests since %s would change: %s", r.Changed(), r.Evaluated,
		r.Since.UTC().Format("Jan 2 15:04"), strings.Join(parts, "; "))
}

// AuditSource visits audit entries oldest first (broker.Tx.ForEachAudit
// from the first entry).
type AuditSource func(fn func(*broker.AuditEntry) error) error

// Replay evaluates the policy against every request submitted (or refused
// by policy) at or after since, as the audit log recorded it, and reports
// the past outcomes that would change. It only reads. Each request is
// judged with the configuration's catalogue and agents, its parent grant
// as approved, and the agent's history rebuilt from the log as it stood
// when the request arrived (so the whole log is read, not only the part
// after since). The TTL seen is the one stored, after any cap of the
// policy then in force.
func Replay(ctx context.Context, p *Policy, cfg *broker.Config, entries AuditSource, since time.Time) (*ReplayReport, error) {
	if cfg == nil {
		cfg = &broker.Config{}
	}
	rep := &ReplayReport{Policy: p.Name(), Since: since}
	history := broker.NewHistory()
	granted := map[string]broker.Terms{} // request id → terms its grant was approved with
	type pending struct {
		old       broker.PolicyResult
		res       broker.PolicyResult
		fx        broker.PolicyEffects
		judgeable bool
	}
	open := map[string]*pending{} // submitted requests judged, by id, until their outcome is known
	var order []string
	outcome := map[string]string{}
	var flips []*Flip
	record := func(id, from string, old, res broker.PolicyResult, fx broker.PolicyEffects) {
		to, rules := judge(from, old, res, fx)
		if to == "" {
			rep.Unchanged++
			return
		}
		i := slices.IndexFunc(flips, func(f *Flip) bool { return f.From == from && f.To == to })
		if i < 0 {
			flips = append(flips, &Flip{From: from, To: to})
			i = len(flips) - 1
		}
		f := flips[i]
		f.Count++
		f.Requests = append(f.Requests, RequestRef(id))
		for _, r := range rules {
			if !slices.Contains(f.Rules, r) {
				f.Rules = append(f.Rules, r)
			}
		}
	}
	err := entries(func(e *broker.AuditEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		inWindow := !e.At.Before(since)
		var d auditData
		if len(e.Data) > 0 && json.Unmarshal(e.Data, &d) != nil && inWindow &&
			(e.Kind == broker.AuditRequestSubmitted || e.Kind == broker.AuditRequestRefused) {
			rep.Unevaluable++
		}
		switch e.Kind {
		case broker.AuditRequestSubmitted, broker.AuditRequestRefused:
			if !inWindow || d.Requested == nil {
				break
			}
			intent := e.Message
			if e.Kind == broker.AuditRequestRefused {
				intent = d.Intent
			}
			in := broker.PolicyInput{
				Request: &broker.TaskRequest{ID: e.RequestID, AgentID: e.AgentID, LoginHint: d.LoginHint, Intent: intent,
					Terms: *d.Requested, ParentID: d.Parent, CreatedAt: e.At},
				Agent: &broker.Agent{ID: e.AgentID},
				Now:   e.At,
			}
			if a, ok := cfg.Agent(e.AgentID); ok {
				in.Agent = a
			}
			if r, ok := cfg.Resource(d.Requested.Resource); ok {
				in.Resource = r
			}
			if t, ok := granted[d.Parent]; ok && d.Parent != "" {
				in.Parent = &broker.Grant{ID: "parent-of-" + e.RequestID, AgentID: e.AgentID, Terms: t}
			}
			h := history.Of(e.AgentID, e.At)
			in.History = &h
			res, fx := p.EvaluateEffects(ctx, in)
			rep.Evaluated++
			rep.ShadowHits += len(fx.Shadow)
			if rep.Until.Before(e.At) {
				rep.Until = e.At
			}
			old := broker.PolicyResult{Verdict: broker.VerdictReview}
			if d.Policy != nil {
				old = *d.Policy
			}
			if e.Kind == broker.AuditRequestRefused {
				record(fmt.Sprintf("audit#%d", e.Seq), OutcomeRefused, old, res, fx)
				break
			}
			open[e.RequestID] = &pending{old: old, res: res, fx: fx, judgeable: true}
			order = append(order, e.RequestID)
		case broker.AuditDecision:
			if e.RequestID == "" {
				break
			}
			switch {
			case e.GrantID != "" && d.Granted != nil:
				granted[e.RequestID] = *d.Granted
				if e.Operator != nil && e.Operator.Issuer == "writ" && strings.HasPrefix(e.Operator.Subject, "policy:") {
					outcome[e.RequestID] = OutcomeAutoApproved
				} else {
					outcome[e.RequestID] = OutcomeApproved
				}
			case d.Kind == broker.DecisionDeny:
				outcome[e.RequestID] = OutcomeDenied
			}
		}
		var expiry time.Time
		if d.Granted != nil {
			expiry = e.At.Add(d.Granted.TTL)
		}
		history.ObserveAudit(e, expiry)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay %s over the audit log: %w", p.Name(), err)
	}
	for _, id := range order {
		pd := open[id]
		from, ok := outcome[id]
		if !ok {
			from = OutcomeUndecided
		}
		record(id, from, pd.old, pd.res, pd.fx)
	}
	for _, f := range flips {
		rep.Flips = append(rep.Flips, *f)
	}
	slices.SortStableFunc(rep.Flips, func(a, b Flip) int { return b.Count - a.Count })
	return rep, nil
}

// auditData is what request.submitted, request.refused and
// request.decided entries carry in their data.
type auditData struct {
	Requested *broker.Terms        `json:"requested"`
	Granted   *broker.Terms        `json:"granted"`
	Intent    string               `json:"intent"`
	LoginHint string               `json:"login_hint"`
	Parent    string               `json:"parent"`
	Policy    *broker.PolicyResult `json:"policy"`
	Kind      broker.DecisionKind  `json:"kind"`
}

// judge says what the candidate would do instead of the past outcome, or
// "" when that is the same, and the rules responsible.
func judge(from string, old, res broker.PolicyResult, fx broker.PolicyEffects) (string, []string) {
	to := WouldReview
	switch res.Verdict {
	case broker.VerdictDeny:
		to = WouldRefuse
	case broker.VerdictAutoApprove:
		to = WouldAutoApprove
	}
	same := false
	switch from {
	case OutcomeRefused:
		same = to == WouldRefuse
	case OutcomeAutoApproved:
		same = to == WouldAutoApprove
	case OutcomeApproved, OutcomeDenied, OutcomeUndecided:
		same = to == WouldReview && max(res.RequireApprovals, 1) == max(old.RequireApprovals, 1)
	}
	if same {
		return "", nil
	}
	if to == WouldReview && max(res.RequireApprovals, 1) > 1 && max(res.RequireApprovals, 1) != max(old.RequireApprovals, 1) {
		to = fmt.Sprintf("reviewed by %d people", res.RequireApprovals)
	}
	if res.Rule != "" {
		return to, []string{res.Rule}
	}
	if len(fx.Matched) > 0 {
		return to, fx.Matched
	}
	if old.Rule != "" {
		return to, []string{old.Rule + " (no longer matches)"}
	}
	return to, nil
}
