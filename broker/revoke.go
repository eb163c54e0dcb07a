package broker

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Revoke ends an active grant and every follow-on grant made under it. It
// is durable before it returns, and the revocation feed carries it to
// resource servers. Revoking never needs a live operator session: op is
// whoever last signed in.
func (s *Service) Revoke(ctx context.Context, op Operator, grantID, reason string) (*Revocation, error) {
	now := s.now().UTC()
	rev := &Revocation{ID: s.newID("rev-", 8), Scope: RevokeGrant, Target: grantID, Operator: op, Reason: reason, At: now}
	var ended []*Grant
	var cancelled []*TaskRequest
	err := s.store.Update(ctx, func(tx Tx) error {
		ended = ended[:0]
		g, err := tx.Grant(grantID)
		if err != nil {
			return err
		}
		st, err := statusIn(tx, g, now)
		if err != nil {
			return err
		}
		if !st.Live() {
			return Errorf(ECONFLICT, "grant %s %s already", grantID, st.Why())
		}
		cause := EndCause{Kind: EndRevokedGrant, Actor: op, At: now, Reason: reason}
		if ended, err = s.endGrantTree(tx, g, cause); err != nil {
			return err
		}
		if cancelled, err = s.cancelFollowOns(tx, ended, now); err != nil {
			return err
		}
		rev.Grants = len(ended)
		return tx.PutRevocation(rev)
	})
	if err != nil {
		return nil, err
	}
	s.publishEnded(ended, now)
	s.publishCancelled(cancelled, now)
	return rev, nil
}

// cancelFollowOns cancels pending follow-on requests of ended grants: a
// follow-on of a revoked task has nothing left to follow on from.
func (s *Service) cancelFollowOns(tx Tx, ended []*Grant, now time.Time) ([]*TaskRequest, error) {
	parents := make(map[string]bool, len(ended))
	for _, g := range ended {
		parents[g.RequestID] = true
	}
	return s.cancelPendingWhere(tx, func(r *TaskRequest) bool { return r.ParentID != "" && parents[r.ParentID] },
		"cancelled: its parent task ended", now)
}

// cancelPendingWhere cancels the pending requests match selects, each with
// an audit entry.
func (s *Service) cancelPendingWhere(tx Tx, match func(*TaskRequest) bool, why string, now time.Time) ([]*TaskRequest, error) {
	var out []*TaskRequest
	err := tx.ForEachPending(func(r *TaskRequest) error {
		if match(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		r.State, r.ClosedAt = RequestCancelled, now
		if err := tx.PutRequest(r); err != nil {
			return nil, err
		}
		e := s.audit(AuditRequestCancelled, systemActor, nil, why)
		e.AgentID, e.RequestID = r.AgentID, r.ID
		if err := tx.AppendAudit(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) publishCancelled(rs []*TaskRequest, now time.Time) {
	events := make([]Event, 0, len(rs))
	for _, r := range rs {
		events = append(events, Event{Kind: EventRequestCancelled, At: now, Request: r})
	}
	s.publish(events...)
}

// endGrantTree ends g with cause, and every follow-on beneath it that is
// still active with "its parent ended": a follow-on lives inside its
// parent, whether the parent expires, completes or is revoked. Each end has
// its own feed signal and audit entry.
func (s *Service) endGrantTree(tx Tx, g *Grant, cause EndCause) ([]*Grant, error) {
	var ended []*Grant
	queue := []*Grant{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		c := cause
		if cur != g {
			c = EndCause{Kind: EndRevokedParent, Actor: System, At: cause.At, Parent: g.ID,
				Reason: "its parent grant " + g.ID + " " + (&GrantStatus{State: cause.State(), Cause: &cause}).Why()}
		}
		if err := s.endGrant(tx, cur, c); err != nil {
			return nil, err
		}
		ended = append(ended, cur)
		for _, id := range cur.Children {
			child, err := tx.Grant(id)
			if err != nil {
				return nil, fmt.Errorf("follow-on grant %s of %s: %w", id, cur.ID, err)
			}
			if child.State == GrantActive {
				queue = append(queue, child)
			}
		}
	}
	return ended, nil
}

// endGrant records an active grant's end with its typed cause, its feed
// signal and its audit entry.
func (s *Service) endGrant(tx Tx, g *Grant, cause EndCause) error {
	g.State, g.EndedAt, g.EndReason, g.EndKind, g.EndParent = cause.State(), cause.At, cause.Reason, cause.Kind, cause.Parent
	by := cause.Actor
	g.EndedBy = &by
	if err := tx.PutGrant(g); err != nil {
		return err
	}
	kind, entity, actor := AuditGrantRevoked, "admin", operatorActor(cause.Actor)
	switch {
	case cause.Kind == EndCompleted:
		kind, entity, actor = AuditGrantCompleted, "user", agentActor(g.AgentID)
	case cause.Kind == EndExpired:
		kind, entity, actor = AuditGrantExpired, "system", systemActor
	case cause.Actor == System || cause.Actor.Subject == "":
		entity, actor = "system", systemActor
	}
	// An expired token is dead by its own exp, and one ended by an epoch
	// was already signalled with the epoch; everything else must reach
	// resource servers.
	if cause.Kind != EndExpired && cause.Kind != EndRevokedAgent && cause.Kind != EndRevokedAll {
		sig := &Signal{Kind: SignalSessionRevoked, At: cause.At, GrantID: g.ID, JTI: g.TokenJTI,
			Audience: g.Terms.Resource, InitiatingEntity: entity, Reason: cause.Reason}
		if err := tx.AppendSignal(sig); err != nil {
			return err
		}
	}
	var opp *Operator
	if actor != agentActor(g.AgentID) && actor != systemActor {
		op := cause.Actor
		opp = &op
	}
	e := s.audit(kind, actor, opp, strings.TrimSpace(string(g.State)+": "+cause.Describe()))
	e.AgentID, e.RequestID, e.GrantID, e.JTI = g.AgentID, g.RequestID, g.ID, g.TokenJTI
	e.Data = auditData(map[string]any{"cause": cause})
	return tx.AppendAudit(e)
}

func (s *Service) publishEnded(ended []*Grant, now time.Time) {
	events := make([]Event, 0, len(ended))
	for _, g := range ended {
		events = append(events, Event{Kind: EventGrantEnded, At: now, Grant: g})
	}
	s.publish(events...)
	if len(ended) > 0 {
		s.refreshSignalSeq()
	}
}

// refreshSignalSeq reads the feed's newest seq after a commit and wakes waiters.
func (s *Service) refreshSignalSeq() {
	var seq uint64
	err := s.store.View(context.Background(), func(tx TxReader) error {
		var err error
		seq, err = tx.LastSignalSeq()
		return err
	})
	if err != nil {
		s.log.Error("read revocation feed position", "err", err)
		return
	}
	s.noteSignals(seq)
}

// Complete ends the grant of the token jti because its agent says the task
// is done (RFC 7009 revocation by the token's own client).
func (s *Service) Complete(ctx context.Context, agentID, jti string) error {
	now := s.now().UTC()
	var ended []*Grant
	var cancelled []*TaskRequest
	err := s.store.Update(ctx, func(tx Tx) error {
		ended = ended[:0]
		t, err := tx.Token(jti)
		if err != nil {
			return err
		}
		if t.AgentID != agentID {
			return Errorf(EFORBIDDEN, "the token belongs to another client")
		}
		g, err := tx.Grant(t.GrantID)
		if err != nil {
			return err
		}
		st, err := statusIn(tx, g, now)
		if err != nil {
			return err
		}
		if !st.Live() {
			// Already ended (revoked, by an epoch too, or expired): it
			// stays as it ended, and revoking twice is not an error (RFC 7009).
			return nil
		}
		ended, err = s.endGrantTree(tx, g, EndCause{Kind: EndCompleted, Actor: Operator{Issuer: "agent", Subject: agentID},
			At: now, Reason: "task completed by the agent"})
		if err != nil {
			return err
		}
		cancelled, err = s.cancelFollowOns(tx, ended, now)
		return err
	})
	if err != nil {
		return err
	}
	s.publishEnded(ended, now)
	s.publishCancelled(cancelled, now)
	return nil
}

// RevokeAgent revokes everything agentID holds in one O(1) write: the
// agent's epoch moves on, and every grant issued under an earlier epoch is
// dead. With quarantine, the agent's pending requests are cancelled and its
// new ones refused until Release.
func (s *Service) RevokeAgent(ctx context.Context, op Operator, agentID, reason string, quarantine bool) (*Revocation, error) {
	if _, ok := s.AgentConfig(agentID); !ok {
		return nil, Errorf(ENOTFOUND, "no agent %q", agentID)
	}
	now := s.now().UTC()
	rev := &Revocation{ID: s.newID("rev-", 8), Scope: RevokeAgent, Target: agentID, Operator: op, Reason: reason, At: now}
	var st AgentState
	var cancelled []*TaskRequest
	err := s.store.Update(ctx, func(tx Tx) error {
		cancelled = cancelled[:0]
		var err error
		if st, err = tx.AgentState(agentID); err != nil {
			return err
		}
		st.ID = agentID
		st.Epoch++
		st.EpochAt = now
		st.Epochs = markEpoch(st.Epochs, EpochMark{Epoch: st.Epoch, At: now, By: op, Reason: reason})
		st.Quarantined = st.Quarantined || quarantine
		rev.Epoch = st.Epoch
		if err := tx.PutAgentState(st); err != nil {
			return err
		}
		if err := tx.PutRevocation(rev); err != nil {
			return err
		}
		if err := tx.AppendSignal(&Signal{Kind: SignalSessionRevoked, At: now, AgentID: agentID, Epoch: st.Epoch,
			InitiatingEntity: "admin", Reason: reason}); err != nil {
			return err
		}
		msg := "revoked everything the agent holds"
		if quarantine {
			msg += " and quarantined it"
			cancelled, err = s.cancelPendingWhere(tx, func(r *TaskRequest) bool { return r.AgentID == agentID },
				"cancelled: agent quarantined", now)
			if err != nil {
				return err
			}
		}
		e := s.audit(AuditAgentRevoked, operatorActor(op), &op, msg+": "+reason)
		e.AgentID = agentID
		e.Data = auditData(map[string]any{"epoch": st.Epoch, "quarantine": quarantine})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventAgentRevoked, At: now, Revocation: rev, Agent: &st})
	s.publishCancelled(cancelled, now)
	s.refreshSignalSeq()
	return rev, nil
}

// Release lifts an agent's quarantine; its revoked grants stay revoked.
func (s *Service) Release(ctx context.Context, op Operator, agentID string) error {
	now := s.now().UTC()
	var st AgentState
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if st, err = tx.AgentState(agentID); err != nil {
			return err
		}
		if !st.Quarantined {
			return Errorf(ECONFLICT, "agent %s is not quarantined", agentID)
		}
		st.ID, st.Quarantined = agentID, false
		if err := tx.PutAgentState(st); err != nil {
			return err
		}
		e := s.audit(AuditAgentReleased, operatorActor(op), &op, "released from quarantine")
		e.AgentID = agentID
		return tx.AppendAudit(e)
	})
	if err != nil {
		return err
	}
	s.publish(Event{Kind: EventAgentReleased, At: now, Agent: &st})
	return nil
}

// RevokeAll revokes every grant in one O(1) write (the global epoch moves
// on) and, with freeze, stops all issuance until Unfreeze. It is durable
// before it returns.
func (s *Service) RevokeAll(ctx context.Context, op Operator, reason string, freeze bool) (*Revocation, error) {
	now := s.now().UTC()
	rev := &Revocation{ID: s.newID("rev-", 8), Scope: RevokeAll, Operator: op, Reason: reason, At: now, Freeze: freeze}
	var st IssuerState
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if st, err = tx.Issuer(); err != nil {
			return err
		}
		st.Epoch++
		st.EpochAt = now
		st.Epochs = markEpoch(st.Epochs, EpochMark{Epoch: st.Epoch, At: now, By: op, Reason: reason})
		if freeze && !st.Frozen {
			by := op
			st.Frozen, st.FrozenAt, st.FrozenBy, st.FrozenWhy = true, now, &by, reason
		}
		rev.Epoch = st.Epoch
		if err := tx.PutIssuer(st); err != nil {
			return err
		}
		if err := tx.PutRevocation(rev); err != nil {
			return err
		}
		if err := tx.AppendSignal(&Signal{Kind: SignalSessionRevoked, At: now, All: true, Epoch: st.Epoch,
			InitiatingEntity: "admin", Reason: reason}); err != nil {
			return err
		}
		msg := "revoked every grant"
		if freeze {
			msg += " and froze issuance"
		}
		e := s.audit(AuditAllRevoked, operatorActor(op), &op, msg+": "+reason)
		e.Data = auditData(map[string]any{"epoch": st.Epoch, "freeze": freeze})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventAllRevoked, At: now, Revocation: rev, Issuer: &st})
	s.refreshSignalSeq()
	return rev, nil
}

// Freeze stops all approvals and minting; revocation still works.
func (s *Service) Freeze(ctx context.Context, op Operator, reason string) error {
	return s.setFrozen(ctx, op, true, reason)
}

// Unfreeze lets approvals and minting resume. Grants revoked while frozen
// stay revoked.
func (s *Service) Unfreeze(ctx context.Context, op Operator, reason string) error {
	return s.setFrozen(ctx, op, false, reason)
}

func (s *Service) setFrozen(ctx context.Context, op Operator, frozen bool, reason string) error {
	now := s.now().UTC()
	var st IssuerState
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if st, err = tx.Issuer(); err != nil {
			return err
		}
		if st.Frozen == frozen {
			return Errorf(ECONFLICT, "issuance is %s already", map[bool]string{true: "frozen", false: "live"}[frozen])
		}
		kind := AuditUnfrozen
		st.Frozen = frozen
		if frozen {
			by := op
			kind, st.FrozenAt, st.FrozenBy, st.FrozenWhy = AuditFrozen, now, &by, reason
		} else {
			st.FrozenAt, st.FrozenBy, st.FrozenWhy = time.Time{}, nil, ""
		}
		if err := tx.PutIssuer(st); err != nil {
			return err
		}
		return tx.AppendAudit(s.audit(kind, operatorActor(op), &op, fmt.Sprintf("%s: %s", kind, reason)))
	})
	if err != nil {
		return err
	}
	s.publish(Event{Kind: EventIssuerChanged, At: now, Issuer: &st})
	return nil
}
