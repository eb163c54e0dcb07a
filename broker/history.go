package broker

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
)

// History windows: the policy sees each agent's counts over the last hour
// and the last day.
const (
	HistoryHour = time.Hour
	HistoryDay  = 24 * time.Hour
)

// maxHistoryMarks bounds the timestamps kept per agent and kind; the rate
// limit keeps real agents far below it, and an agent past it loses its
// oldest marks first (its counts stay at least this large).
const maxHistoryMarks = 10_000

// HistoryCounts are what an agent did within one window.
type HistoryCounts struct {
	Requests    int `json:"requests"`    // submitted, including those policy refused
	Denials     int `json:"denials"`     // denied by an operator
	Refusals    int `json:"refusals"`    // refused by policy at submission
	Revocations int `json:"revocations"` // of its grants, or of everything it held
}

// AgentHistory is what a policy sees of an agent's recent past: counts
// over the last hour and day (a window (now-d, now]: an event exactly d
// ago has left it) and the grants it holds now.
type AgentHistory struct {
	Hour         HistoryCounts `json:"hour"`
	Day          HistoryCounts `json:"day"`
	ActiveGrants int           `json:"active_grants"`
}

// History keeps each agent's recent past in memory, so a policy can ask
// about it at every submission without reading the audit log. It is fed
// with the Service's events (Observe), or with audit entries when a
// candidate policy is replayed over the past (ObserveAudit). It is safe
// for concurrent use.
type History struct {
	mu     sync.Mutex
	agents map[string]*agentMarks
}

// agentMarks are one agent's event times, oldest first, and its live
// grants with their expiry.
type agentMarks struct {
	requests, denials, refusals, revocations []time.Time
	grants                                   map[string]time.Time
}

// NewHistory returns an empty History.
func NewHistory() *History { return &History{agents: make(map[string]*agentMarks)} }

func (h *History) agent(id string) *agentMarks {
	a := h.agents[id]
	if a == nil {
		a = &agentMarks{grants: make(map[string]time.Time)}
		h.agents[id] = a
	}
	return a
}

// mark records one event at t, keeping the list ordered.
func mark(l *[]time.Time, t time.Time) {
	s := *l
	i := len(s)
	for i > 0 && s[i-1].After(t) {
		i-- // events are published nearly in order: this rarely moves
	}
	s = slices.Insert(s, i, t)
	if len(s) > maxHistoryMarks {
		s = s[len(s)-maxHistoryMarks:]
	}
	*l = s
}

// Observe records what an event says about its agent. The Service calls
// it for every event it publishes.
func (h *History) Observe(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Kind {
	case EventRequestSubmitted:
		if e.Request != nil {
			mark(&h.agent(e.Request.AgentID).requests, e.At)
		}
	case EventRequestRefused:
		if e.Request != nil {
			a := h.agent(e.Request.AgentID)
			mark(&a.requests, e.At)
			mark(&a.refusals, e.At)
		}
	case EventRequestDecided:
		switch {
		case e.Decision != nil && e.Decision.Kind == DecisionDeny && e.Request != nil:
			mark(&h.agent(e.Request.AgentID).denials, e.At)
		case e.Grant != nil:
			h.agent(e.Grant.AgentID).grants[e.Grant.ID] = e.Grant.ExpiresAt
		}
	case EventGrantEnded:
		if g := e.Grant; g != nil {
			a := h.agent(g.AgentID)
			delete(a.grants, g.ID)
			if g.State == GrantRevoked {
				mark(&a.revocations, e.At)
			}
		}
	case EventAgentRevoked:
		if e.Agent != nil {
			a := h.agent(e.Agent.ID)
			clear(a.grants) // the epoch ended them all
			mark(&a.revocations, e.At)
		}
	case EventAllRevoked:
		for _, a := range h.agents {
			if len(a.grants) > 0 {
				clear(a.grants)
				mark(&a.revocations, e.At)
			}
		}
	}
}

// ObserveAudit records what an audit entry says about its agent, so a
// replay sees each past request with the history it had then. Grants are
// counted from their approval to their end as recorded, or their expiry.
func (h *History) ObserveAudit(e *AuditEntry, grantExpiry time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Kind == AuditAllRevoked {
		for _, a := range h.agents {
			if len(a.grants) > 0 {
				clear(a.grants)
				mark(&a.revocations, e.At)
			}
		}
		return
	}
	if e.AgentID == "" {
		return
	}
	a := h.agent(e.AgentID)
	switch e.Kind {
	case AuditRequestSubmitted:
		mark(&a.requests, e.At)
	case AuditRequestRefused:
		mark(&a.requests, e.At)
		mark(&a.refusals, e.At)
	case AuditDecision:
		switch {
		case e.GrantID != "":
			a.grants[e.GrantID] = grantExpiry
		case len(e.Data) > 0 && decisionKind(e.Data) == DecisionDeny:
			mark(&a.denials, e.At)
		}
	case AuditGrantRevoked:
		delete(a.grants, e.GrantID)
		mark(&a.revocations, e.At)
	case AuditGrantExpired, AuditGrantCompleted:
		delete(a.grants, e.GrantID)
	case AuditAgentRevoked:
		clear(a.grants)
		mark(&a.revocations, e.At)
	}
}

// Of returns an agent's history as of now.
func (h *History) Of(agentID string, now time.Time) AgentHistory {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.agents[agentID]
	if a == nil {
		return AgentHistory{}
	}
	var out AgentHistory
	for _, w := range []struct {
		d   time.Duration
		dst *HistoryCounts
	}{{HistoryHour, &out.Hour}, {HistoryDay, &out.Day}} {
		w.dst.Requests = within(a.requests, now, w.d)
		w.dst.Denials = within(a.denials, now, w.d)
		w.dst.Refusals = within(a.refusals, now, w.d)
		w.dst.Revocations = within(a.revocations, now, w.d)
	}
	for id, exp := range a.grants {
		if now.Before(exp) {
			out.ActiveGrants++
		} else {
			delete(a.grants, id) // expired: its end event may come later
		}
	}
	// Marks older than a day are never counted again.
	for _, l := range []*[]time.Time{&a.requests, &a.denials, &a.refusals, &a.revocations} {
		if n := sinceIndex(*l, now.Add(-HistoryDay)); n > 0 {
			*l = slices.Delete(*l, 0, n)
		}
	}
	return out
}

// within counts the marks in (now-d, now].
func within(l []time.Time, now time.Time, d time.Duration) int {
	from := sinceIndex(l, now.Add(-d))
	to, _ := slices.BinarySearchFunc(l, now, func(t, target time.Time) int {
		if t.After(target) {
			return 1
		}
		return -1 // equal counts as before now: (.., now] includes it
	})
	return max(to-from, 0)
}

// sinceIndex is the index of the first mark after t.
func sinceIndex(l []time.Time, t time.Time) int {
	i, _ := slices.BinarySearchFunc(l, t, func(m, target time.Time) int {
		if m.After(target) {
			return 1
		}
		return -1
	})
	return i
}

// seedHistory counts the grants that are active when the service starts;
// counts of past events start empty.
func (s *Service) seedHistory(ctx context.Context) error {
	// Only the three fields the counts need are kept: a whole Grant each
	// would hold some 50 MB of heap at start with 100,000 active grants.
	type liveGrant struct {
		ID, AgentID string
		ExpiresAt   time.Time
	}
	var live []liveGrant
	err := s.store.View(ctx, func(tx TxReader) error {
		return tx.ForEachActiveGrant(func(g *Grant) error {
			if err := s.loadAwaitingGrant(tx, g); err != nil {
				return err
			}
			if s.EffectiveState(g) == GrantActive {
				// Clones: a decoded record's strings share one buffer
				// (store's decoder), which a kept id would hold whole.
				live = append(live, liveGrant{ID: strings.Clone(g.ID), AgentID: strings.Clone(g.AgentID), ExpiresAt: g.ExpiresAt})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.history.mu.Lock()
	defer s.history.mu.Unlock()
	for _, g := range live {
		s.history.agent(g.AgentID).grants[g.ID] = g.ExpiresAt
	}
	return nil
}

// decisionKind reads the kind of a request.decided audit entry's data.
func decisionKind(data []byte) DecisionKind {
	var d struct {
		Kind DecisionKind `json:"kind"`
	}
	if json.Unmarshal(data, &d) != nil {
		return ""
	}
	return d.Kind
}

// AgentHistory returns an agent's recent history as the policy sees it.
func (s *Service) AgentHistory(agentID string) AgentHistory {
	return s.history.Of(agentID, s.now())
}

// historyPolicy gives the policy each agent's history: it fills
// PolicyInput.History from the service's memory before evaluating.
type historyPolicy struct {
	policy  Policy
	history *History
}

func (p historyPolicy) withHistory(in PolicyInput) PolicyInput {
	if in.History == nil && in.Request != nil {
		h := p.history.Of(in.Request.AgentID, in.Now)
		in.History = &h
	}
	return in
}

// Evaluate implements Policy: the wrapped policy's Evaluate, which, for
// a policy with effects, judges the request as a caller that applies none.
func (p historyPolicy) Evaluate(ctx context.Context, in PolicyInput) PolicyResult {
	return p.policy.Evaluate(ctx, p.withHistory(in))
}

// EvaluateEffects implements EffectsPolicy.
func (p historyPolicy) EvaluateEffects(ctx context.Context, in PolicyInput) (PolicyResult, PolicyEffects) {
	in = p.withHistory(in)
	if ep, ok := p.policy.(EffectsPolicy); ok {
		return ep.EvaluateEffects(ctx, in)
	}
	return p.policy.Evaluate(ctx, in), PolicyEffects{}
}
