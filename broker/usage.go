package broker

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// usageRecorder counts grant uses in memory; the service flushes them to
// the store in one transaction a second. Uses are evidence, not authority,
// so a crash may lose at most the last second of counts, and introspection
// never waits for an fsync.
type usageRecorder struct {
	mu sync.Mutex
	m  map[string]*usage
}

type usage struct {
	accepted, refused int64 // while the grant was live
	afterEndAccepted  int64 // after it ended: a resource server that missed the revocation
	afterEndRefused   int64 // after it ended: the revocation reached the resource server
	first, last       time.Time
	// reporters, endpoints and reasons say who saw the uses, where, and why
	// refused ones were refused; each is bounded.
	reporters []string
	endpoints []string
	reasons   map[string]int64
	// straddled counts uses reported in a window that crosses the grant's
	// end: they are counted as before it, never as after.
	straddled int64
}

// Bounds on what one flush interval keeps per grant.
const (
	maxUseReporters = 4
	maxUseEndpoints = 8
	maxUseReasons   = 16
)

func addBounded(list []string, v string, limit int) []string {
	if v == "" || len(list) >= limit || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func newUsageRecorder() *usageRecorder { return &usageRecorder{m: make(map[string]*usage)} }

// Who reports the uses writ sees itself, and where; merge only reads them.
var (
	introspectionReporters = []string{"introspection"}
	introspectionEndpoints = []string{"POST /introspect"}
)

// record counts one use of a grant seen by writ itself (introspection),
// accepted or refused (for reason), made while the grant was live or
// after it ended.
func (u *usageRecorder) record(grantID string, at time.Time, accepted, afterEnd bool, reason string) {
	d := usage{first: at, last: at, reporters: introspectionReporters, endpoints: introspectionEndpoints}
	switch {
	case afterEnd && accepted:
		d.afterEndAccepted = 1
	case afterEnd:
		d.afterEndRefused = 1
	case accepted:
		d.accepted = 1
	default:
		d.refused = 1
	}
	if !accepted {
		d.reasons = map[string]int64{reason: 1}
	}
	u.merge(grantID, &d)
}

func (u *usageRecorder) merge(grantID string, d *usage) {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.m[grantID]
	if !ok {
		x = &usage{}
		u.m[grantID] = x
	}
	x.accepted += d.accepted
	x.refused += d.refused
	x.afterEndAccepted += d.afterEndAccepted
	x.afterEndRefused += d.afterEndRefused
	x.straddled += d.straddled
	if d.last.After(x.last) {
		x.last = d.last
	}
	if !d.first.IsZero() && (x.first.IsZero() || d.first.Before(x.first)) {
		x.first = d.first
	}
	for _, r := range d.reporters {
		x.reporters = addBounded(x.reporters, r, maxUseReporters)
	}
	for _, e := range d.endpoints {
		x.endpoints = addBounded(x.endpoints, e, maxUseEndpoints)
	}
	for r, n := range d.reasons {
		if x.reasons == nil {
			x.reasons = map[string]int64{}
		}
		if _, ok := x.reasons[r]; ok || len(x.reasons) < maxUseReasons {
			x.reasons[r] += n
		}
	}
}

// record is what a grant.used audit entry carries: how many, when (the
// window of the uses it counts), who reported them, where, and why the
// refused ones were refused.
func (d *usage) record() map[string]any {
	out := map[string]any{"accepted": d.accepted, "refused": d.refused,
		"accepted_after_end": d.afterEndAccepted, "refused_after_end": d.afterEndRefused,
		"reported_by": d.reporters, "endpoints": d.endpoints}
	if !d.first.IsZero() {
		out["from"] = d.first.UTC()
	}
	if !d.last.IsZero() {
		out["to"] = d.last.UTC()
	}
	if len(d.reasons) > 0 {
		out["refused_reasons"] = d.reasons
	}
	if d.straddled > 0 {
		out["straddling_end"] = d.straddled
	}
	return out
}

func (u *usageRecorder) take() map[string]*usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.m
	u.m = make(map[string]*usage)
	return m
}

// FlushUsage writes recorded uses to their grants with an audit entry each,
// and publishes the updated grants.
func (s *Service) FlushUsage(ctx context.Context) error {
	pending := s.usage.take()
	if len(pending) == 0 {
		return nil
	}
	now := s.now().UTC()
	var updated []*Grant
	err := s.store.Update(ctx, func(tx Tx) error {
		updated = updated[:0]
		for id, u := range pending {
			g, err := tx.Grant(id)
			if ErrorCode(err) == ENOTFOUND {
				continue
			}
			if err != nil {
				return err
			}
			g.Uses += u.accepted
			if !u.last.IsZero() {
				g.LastUse = u.last.UTC()
			}
			g.RefusedAfterEnd += u.afterEndRefused
			g.AcceptedAfterEnd += u.afterEndAccepted
			if err := tx.PutGrant(g); err != nil {
				return err
			}
			msg := fmt.Sprintf("%d accepted, %d refused", u.accepted, u.refused)
			if n := u.afterEndAccepted + u.afterEndRefused; n > 0 {
				msg += fmt.Sprintf("; after the grant ended: %d refused, %d accepted", u.afterEndRefused, u.afterEndAccepted)
			}
			if len(u.reporters) > 0 {
				msg += " (reported by " + strings.Join(u.reporters, ", ") + ")"
			}
			e := s.audit(AuditGrantUsed, agentActor(g.AgentID), nil, msg)
			e.AgentID, e.GrantID, e.JTI = g.AgentID, g.ID, g.TokenJTI
			e.Data = auditData(u.record())
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
			updated = append(updated, g)
		}
		return nil
	})
	if err != nil {
		// Put the counts back so they are not lost with a failed flush.
		for id, u := range pending {
			s.usage.merge(id, u)
		}
		return fmt.Errorf("flush grant uses: %w", err)
	}
	events := make([]Event, 0, len(updated))
	for _, g := range updated {
		events = append(events, Event{Kind: EventGrantUsed, At: now, Grant: g})
	}
	s.publish(events...)
	return nil
}

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
