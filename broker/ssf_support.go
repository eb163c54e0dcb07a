package broker

import (
	"context"
	"strings"
	"time"
)

// This file holds what the revocation feed (broker/ssf) and the guard's use
// reports need from the domain beyond the rest of the Service: access to
// the feed's own records, batched use reports, and narrowing a live grant,
// which reaches resource servers as a CAEP token-claims-change.

// RecordReader and RecordWriter are the parts of a transaction that
// subpackages keeping their own records (SSF streams and delivery
// cursors, standing approvals) may use; RecordTx is both.
type (
	RecordReader interface {
		Record(ns, id string) ([]byte, error)
		ForEachRecord(ns string, fn func(id string, value []byte) error) error
	}
	RecordWriter interface {
		PutRecord(ns, id string, value []byte) error
		DeleteRecord(ns, id string) error
	}
	RecordTx interface {
		RecordReader
		RecordWriter
	}
)

// ViewRecords runs fn in a read-only transaction over the records.
func (s *Service) ViewRecords(ctx context.Context, fn func(RecordReader) error) error {
	return s.store.View(ctx, func(tx TxReader) error { return fn(tx) })
}

// UpdateRecords runs fn in a read-write transaction over the records and
// commits durably before returning.
func (s *Service) UpdateRecords(ctx context.Context, fn func(RecordTx) error) error {
	return s.store.Update(ctx, func(tx Tx) error { return fn(tx) })
}

// MaxTokenLifetime is the longest any token can live: a revocation older
// than this concerns only tokens that are dead by their exp anyway.
func (s *Service) MaxTokenLifetime() time.Duration { return s.cfg.Limits.MaxTTL }

// UseReport counts the uses of one grant's tokens that a resource server's
// guard checked itself since its last report.
type UseReport struct {
	// Resource is the resource server that reports: it may report uses of
	// its own grants only. Every network caller sets it; "" is for writ's
	// own callers.
	Resource string
	GrantID  string
	Accepted int64
	Refused  int64
	// FirstAccepted, LastAccepted, FirstRefused and LastRefused are when
	// the first and latest use of each kind happened (zero: now). A use
	// after the grant ended is one the resource server refused because the
	// revocation reached it, or, if accepted, one that beat the revocation
	// there. Uses whose window crosses the end are counted as before it.
	FirstAccepted, LastAccepted time.Time
	FirstRefused, LastRefused   time.Time
	// Endpoints are the method and path called; Reasons count why the
	// refused uses were refused (the guard's reasons).
	Endpoints []string
	Reasons   map[string]int64
}

// ReportUses records uses that a guard checked itself. Like introspection
// uses it is evidence for the console ("revoked 3s ago, 2 refused uses since, 0
// accepted"), never authority; it is counted in memory and flushed with
// FlushUsage.
func (s *Service) ReportUses(ctx context.Context, r UseReport) error {
	if r.Accepted < 0 || r.Refused < 0 {
		return Errorf(EINVALID, "use counts must not be negative")
	}
	if r.Accepted == 0 && r.Refused == 0 {
		return nil
	}
	now := s.now()
	// Every guard reports about once a second: the grant comes from the
	// cache introspection keeps (read-only, dropped on every grant write).
	g, err := s.cachedGrant(ctx, r.GrantID)
	if err != nil {
		return err
	}
	if r.Resource != "" && g.Terms.Resource != r.Resource {
		return Errorf(EFORBIDDEN, "grant %s is not a grant for %s; a resource server reports uses of its own grants only", r.GrantID, r.Resource)
	}
	var ended time.Time
	if st := StatusOf(g, s.IssuerState(), s.agentState(g.AgentID), now); !st.Live() {
		ended = st.Cause.At
	}
	at := func(t time.Time) time.Time {
		if t.IsZero() || t.After(now) {
			return now
		}
		return t
	}
	// after says whether uses from first to last all came after the end;
	// a window that crosses it counts as before (and is noted), so a use
	// from before a revocation is never shown as one after it.
	after := func(first, last time.Time, n int64, d *usage) bool {
		first, last = at(first), at(last)
		if first.IsZero() || first.After(last) {
			first = last
		}
		switch {
		case ended.IsZero() || last.Before(ended):
			return false
		case !first.Before(ended):
			return true
		}
		d.straddled += n
		return false
	}
	d := usage{reporters: []string{r.Resource}, endpoints: r.Endpoints, reasons: r.Reasons}
	for _, t := range []time.Time{r.FirstAccepted, r.LastAccepted, r.FirstRefused, r.LastRefused} {
		if t.IsZero() {
			continue
		}
		t = at(t)
		if d.first.IsZero() || t.Before(d.first) {
			d.first = t
		}
		if t.After(d.last) {
			d.last = t
		}
	}
	if d.last.IsZero() {
		d.first, d.last = now, now
	}
	if r.Accepted > 0 && after(r.FirstAccepted, r.LastAccepted, r.Accepted, &d) {
		d.afterEndAccepted = r.Accepted
	} else {
		d.accepted = r.Accepted
	}
	if r.Refused > 0 && after(r.FirstRefused, r.LastRefused, r.Refused, &d) {
		d.afterEndRefused = r.Refused
	} else {
		d.refused = r.Refused
	}
	s.usage.merge(g.ID, &d)
	return nil
}

// AuditGrantNarrowed records an operator narrowing a live grant.
const AuditGrantNarrowed AuditKind = "grant.narrowed"

// EventGrantNarrowed tells subscribers a live grant was narrowed; Grant
// carries its new terms.
const EventGrantNarrowed EventKind = "grant.narrowed"

// NarrowGrant narrows an active grant while its token is live: fewer
// scopes or authorization details, or a shorter life. The token itself
// cannot change, so the revocation feed carries a CAEP token-claims-change
// with the new scope, authorization_details and exp, and guards enforce
// them from then on. The resource (the token's aud) cannot be narrowed this
// way: revoke the grant and approve a narrower request instead. Like a
// revocation it is durable before it returns.
func (s *Service) NarrowGrant(ctx context.Context, op Operator, grantID string, terms Terms, reason string) (*Grant, error) {
	if op.Subject == "" || op.Issuer == "" {
		return nil, Errorf(EUNAUTHORIZED, "narrowing a grant needs a signed-in operator")
	}
	now := s.now().UTC()
	var g *Grant
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if g, err = tx.Grant(grantID); err != nil {
			return err
		}
		st, err := statusIn(tx, g, now)
		if err != nil {
			return err
		}
		if !st.Live() {
			return Errorf(ECONFLICT, "grant %s %s", grantID, st.Why())
		}
		// Dropping a scope drops it from every detail.
		next := terms.Clone().Normalized()
		if next.Resource == "" {
			next.Resource = g.Terms.Resource
		}
		if next.Resource != g.Terms.Resource {
			return Errorf(EINVALID, "a live grant's resource cannot change (its token names %s); revoke it and approve a narrower request", g.Terms.Resource)
		}
		if next.TTL == 0 {
			next.TTL = g.Terms.TTL
		}
		if why := next.NarrowerThan(g.Terms); why != "" {
			return Errorf(EINVALID, "a narrowing may not widen the grant: %s", why)
		}
		if len(next.ResourceScopes()) == 0 {
			return Errorf(EINVALID, "a narrowed grant needs at least one scope; revoke it instead")
		}
		expires := g.CreatedAt.Add(next.TTL)
		if !expires.After(now) {
			return Errorf(EINVALID, "that TTL has already run out; revoke the grant instead")
		}
		prev := g.Terms
		g.Terms, g.ExpiresAt = next, expires
		if err := tx.PutGrant(g); err != nil {
			return err
		}
		if g.TokenJTI != "" {
			details := next.Details
			if details == nil {
				details = []AuthorizationDetail{} // none left: say so, not "unchanged"
			}
			claims := map[string]any{
				"scope":                 strings.Join(next.ResourceScopes(), " "),
				"authorization_details": details,
				"exp":                   expires.Unix(),
			}
			sig := &Signal{Kind: SignalTokenClaimsChange, At: now, GrantID: g.ID, JTI: g.TokenJTI,
				Audience: g.Terms.Resource, InitiatingEntity: "admin", Reason: reason, Claims: claims}
			if err := tx.AppendSignal(sig); err != nil {
				return err
			}
		}
		msg := "narrowed while live"
		if reason != "" {
			msg += ": " + reason
		}
		e := s.audit(AuditGrantNarrowed, operatorActor(op), &op, msg)
		e.AgentID, e.RequestID, e.GrantID, e.JTI = g.AgentID, g.RequestID, g.ID, g.TokenJTI
		e.Data = auditData(map[string]any{"before": prev, "after": next})
		return tx.AppendAudit(e)
	})
	if err != nil {
		return nil, err
	}
	s.publish(Event{Kind: EventGrantNarrowed, At: now, Grant: g})
	s.refreshSignalSeq()
	return g, nil
}
