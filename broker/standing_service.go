package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RecordStanding is the record namespace of standing approvals: id: the
// standing approval's id; value: a standingRecord, JSON.
const RecordStanding = "standing.approval"

// standingRecord is a standing approval as stored. It is its own
// versioned type, so the domain struct can change without breaking what
// older writs wrote.
type standingRecord struct {
	V           int           `json:"v"` // 1
	ID          string        `json:"id"`
	AgentID     string        `json:"agent_id"`
	Terms       Terms         `json:"terms"`
	FromRequest string        `json:"from_request"`
	CreatedBy   Operator      `json:"created_by"`
	CreatedAt   time.Time     `json:"created_at"`
	ExpiresAt   time.Time     `json:"expires_at"`
	Reason      string        `json:"reason,omitempty"`
	Uses        []StandingUse `json:"uses,omitempty"`
	RevokedAt   time.Time     `json:"revoked_at,omitzero"`
	RevokedBy   *Operator     `json:"revoked_by,omitempty"`
}

func recordOf(s *StandingApproval) ([]byte, error) {
	return json.Marshal(standingRecord{V: 1, ID: s.ID, AgentID: s.AgentID, Terms: s.Terms, FromRequest: s.FromRequest,
		CreatedBy: s.CreatedBy, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Reason: s.Reason, Uses: s.Uses,
		RevokedAt: s.RevokedAt, RevokedBy: s.RevokedBy})
}

func standingOf(b []byte) (*StandingApproval, error) {
	var r standingRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.V != 1 {
		return nil, fmt.Errorf("standing approval record version %d is newer than this writ understands", r.V)
	}
	return &StandingApproval{ID: r.ID, AgentID: r.AgentID, Terms: r.Terms, FromRequest: r.FromRequest, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, Reason: r.Reason, Uses: r.Uses, RevokedAt: r.RevokedAt, RevokedBy: r.RevokedBy}, nil
}

// loadStanding reads the standing approvals kept in the store.
func (s *Service) loadStanding(ctx context.Context) error {
	return s.store.View(ctx, func(tx TxReader) error {
		return tx.ForEachRecord(RecordStanding, func(id string, value []byte) error {
			sa, err := standingOf(value)
			if err != nil {
				return fmt.Errorf("standing approval %s: %w", id, err)
			}
			s.standing.Restore(sa)
			return nil
		})
	})
}

// CreateStanding makes a standing approval from an operator's approval of
// requestID: for d, the agent's later requests for the same or fewer
// actions on the same resource are approved without a person. The request
// must have been approved (its grant's terms bound the standing
// approval). Refused as StandingRefusal says (high or critical risk, a
// follow-on, several approvers) and beyond the maximum
// (Options.MaxStanding). Durable and audited before
// it returns.
func (s *Service) CreateStanding(ctx context.Context, op Operator, requestID string, d time.Duration, reason string) (*StandingApproval, error) {
	if op.Subject == "" || op.Issuer == "" {
		return nil, Errorf(EUNAUTHORIZED, "a standing approval needs a signed-in operator")
	}
	now := s.now().UTC()
	var sa *StandingApproval
	err := s.store.Update(ctx, func(tx Tx) error {
		req, err := tx.Request(requestID)
		if err != nil {
			return err
		}
		if req.State != RequestApproved && req.State != RequestRedeemed || req.GrantID == "" {
			return Errorf(ECONFLICT, "request %s is %s: a standing approval is made from an approval", short(requestID), req.State)
		}
		g, err := tx.Grant(req.GrantID)
		if err != nil {
			return err
		}
		risk := RiskHigh // a resource the catalogue does not know is never approved standing
		if res, ok := s.cfg.Resource(req.Terms.Resource); ok {
			risk = res.RiskOf(req.Terms)
		}
		if req.Policy != nil {
			risk = max(risk, req.Policy.Risk)
		}
		sa, err = s.standing.Check(StandingInput{ID: s.newID("standing-", 8), Operator: op, Request: req, Granted: g.Terms,
			Risk: risk, For: d, Reason: reason, Now: now})
		if err != nil {
			return err
		}
		b, err := recordOf(sa)
		if err != nil {
			return err
		}
		if err := tx.PutRecord(RecordStanding, sa.ID, b); err != nil {
			return err
		}
		e := s.audit(AuditStandingCreated, operatorActor(op), &op, fmt.Sprintf("standing approval %s for %s: %s for %s",
			sa.ID, sa.AgentID, shortDuration(d), reason))
		e.AgentID, e.RequestID, e.GrantID = sa.AgentID, req.ID, g.ID
		e.Data = auditData(map[string]any{"standing": sa.ID, "terms": sa.Terms, "expires_at": sa.ExpiresAt})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	// In force once durable.
	if err := s.standing.Add(sa); err != nil {
		return nil, err
	}
	return sa, nil
}

// RevokeStanding ends a standing approval at once: no request is approved
// under it from now on; the grants it produced continue until revoked.
// Revoking never needs a live session. Durable and audited before it
// returns.
func (s *Service) RevokeStanding(ctx context.Context, op Operator, id, reason string) (*StandingApproval, error) {
	now := s.now().UTC()
	sa, err := s.standing.Revoke(id, op, now)
	if err != nil {
		return nil, err
	}
	// In force in memory from here: a request arriving while this commits
	// is already not approved under it.
	err = s.store.Update(ctx, func(tx Tx) error {
		b, err := recordOf(sa)
		if err != nil {
			return err
		}
		if err := tx.PutRecord(RecordStanding, sa.ID, b); err != nil {
			return err
		}
		e := s.audit(AuditStandingRevoked, operatorActor(op), &op, fmt.Sprintf("standing approval %s revoked: %s", sa.ID, reason))
		e.AgentID = sa.AgentID
		e.Data = auditData(map[string]any{"standing": sa.ID, "uses": len(sa.Uses)})
		return tx.AppendAudit(e)
	})
	if err != nil {
		// Stays revoked in memory (toward less access); the store keeps the
		// old record, so a restart would bring it back: say so.
		s.log.Error("standing approval revoked in memory but not recorded", "standing", id, "err", err)
		return nil, err
	}
	return sa, nil
}

// StandingApprovals lists the standing approvals, live ones first.
func (s *Service) StandingApprovals() []*StandingApproval { return s.standing.List(s.now()) }

// approveByStanding approves a request a standing approval covers, under
// the standing approval's operator, records the use durably and returns
// the request as it now stands; nil when none covers it or the approval
// could not take effect (frozen, quarantined: the request waits for a
// person). Policy decides first: a request policy denies, auto-approves
// or needs several approvers is not approved this way.
func (s *Service) approveByStanding(ctx context.Context, req *TaskRequest) *TaskRequest {
	if req.Policy == nil || req.Policy.Verdict != VerdictReview || req.Policy.RequireApprovals > 1 {
		return nil
	}
	risk := max(req.Policy.Risk, RiskHigh) // unknown to the catalogue: never
	if res, ok := s.cfg.Resource(req.Terms.Resource); ok {
		risk = max(req.Policy.Risk, res.RiskOf(req.Terms))
	}
	now := s.now().UTC()
	sa := s.standing.Match(req, risk, now)
	if sa == nil {
		return nil
	}
	// The decision and the use it makes of the standing approval are one
	// commit, so no grant names a standing approval whose record lacks it.
	var out decided
	var refused error
	err := s.store.Batch(ctx, func(tx Tx) error {
		var err error
		out, refused, err = s.decideTx(tx, sa.Operator(), req.ID, DecisionApprove, nil, "standing approval "+sa.ID, now)
		if err != nil || refused != nil {
			return err // a refusal wrote nothing: the group commits without it
		}
		b, err := tx.Record(RecordStanding, sa.ID)
		if err != nil {
			return err
		}
		stored, err := standingOf(b)
		if err != nil {
			return err
		}
		stored.Uses = append(stored.Uses, StandingUse{RequestID: req.ID, At: now})
		if b, err = recordOf(stored); err != nil {
			return err
		}
		return tx.PutRecord(RecordStanding, sa.ID, b)
	})
	if err == nil {
		err = refused
	}
	if err != nil {
		s.log.Warn("standing approval did not take effect", "request", short(req.ID), "standing", sa.ID, "err", err)
		return nil
	}
	if err := s.standing.RecordUse(sa.ID, req.ID, now); err != nil {
		s.log.Error("record standing approval use", "standing", sa.ID, "err", err)
	}
	s.publishDecided(out.req, out.dec, out.grant, now)
	return out.req
}
