package broker

import (
	"context"
	"time"
)

// Pending returns the pending requests, oldest first.
func (s *Service) Pending(ctx context.Context) ([]*TaskRequest, error) {
	var out []*TaskRequest
	err := s.store.View(ctx, func(tx TxReader) error {
		return tx.ForEachPending(func(r *TaskRequest) error {
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Request returns one request.
func (s *Service) Request(ctx context.Context, id string) (*TaskRequest, error) {
	var r *TaskRequest
	err := s.store.View(ctx, func(tx TxReader) error {
		var err error
		r, err = tx.Request(id)
		return err
	})
	return r, err
}

// Grant returns one grant.
func (s *Service) Grant(ctx context.Context, id string) (*Grant, error) {
	var g *Grant
	err := s.store.View(ctx, func(tx TxReader) error {
		var err error
		g, err = tx.Grant(id)
		return err
	})
	return g, err
}

// Decision returns one decision.
func (s *Service) Decision(ctx context.Context, id string) (*Decision, error) {
	var d *Decision
	err := s.store.View(ctx, func(tx TxReader) error {
		var err error
		d, err = tx.Decision(id)
		return err
	})
	return d, err
}

// Grants returns active grants (live or dead by an epoch: see
// EffectiveState) and grants that ended within the last `recent`, oldest
// first.
func (s *Service) Grants(ctx context.Context, recent time.Duration) ([]*Grant, error) {
	cutoff := s.now().Add(-recent)
	var out []*Grant
	err := s.store.View(ctx, func(tx TxReader) error {
		if recent <= 0 {
			return tx.ForEachActiveGrant(func(g *Grant) error {
				out = append(out, g)
				return nil
			})
		}
		return tx.ForEachGrant(func(g *Grant) error {
			if g.State == GrantActive || g.EndedAt.After(cutoff) {
				out = append(out, g)
			}
			return nil
		})
	})
	return out, err
}

// EffectiveState is a grant's state as of now, with the revocation
// epochs applied (StatusOf).
func (s *Service) EffectiveState(g *Grant) GrantState { return s.StatusOf(g).State }

// AgentView is an agent's configuration with its live state.
type AgentView struct {
	Agent Agent
	State AgentState
}

// Agents returns every configured agent with its state.
func (s *Service) Agents() []AgentView {
	out := make([]AgentView, 0, len(s.cfg.Agents))
	for _, a := range s.cfg.Agents {
		out = append(out, AgentView{Agent: a, State: s.agentState(a.ID)})
	}
	return out
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Before  uint64 // only entries with Seq < Before (0: from the newest)
	Limit   int    // at most this many (0: 100)
	AgentID string
	GrantID string
	Kinds   []AuditKind
}

// Audit returns entries newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	from := uint64(0)
	if f.Before > 1 {
		from = f.Before - 1
	} else if f.Before == 1 {
		return nil, nil
	}
	var out []*AuditEntry
	err := s.store.View(ctx, func(tx TxReader) error {
		err := tx.ForEachAuditReverse(from, func(e *AuditEntry) error {
			if (f.AgentID != "" && e.AgentID != f.AgentID) || (f.GrantID != "" && e.GrantID != f.GrantID) {
				return nil
			}
			if len(f.Kinds) > 0 && !containsKind(f.Kinds, e.Kind) {
				return nil
			}
			out = append(out, e)
			if len(out) >= f.Limit {
				return errStop
			}
			return nil
		})
		if err == errStop {
			return nil
		}
		return err
	})
	return out, err
}

func containsKind(ks []AuditKind, k AuditKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// VerifyAudit checks the whole audit chain (VerifyAuditLog).
func (s *Service) VerifyAudit(ctx context.Context) (uint64, error) {
	return VerifyAuditLog(ctx, s.store)
}
