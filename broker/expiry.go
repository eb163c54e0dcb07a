package broker

import (
	"context"
	"time"
)

// Run drives the service's background work until ctx ends: expiring
// pending requests at their review deadline and grants at their TTL (from
// the ordered expiry index, never a scan), flushing use counts, and
// pruning retired keys, and watching the store's write health.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	probe := time.NewTicker(s.opts.StoreProbeInterval)
	defer probe.Stop()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		s.watchStore(ctx, probe.C)
	}()
	defer func() { <-watching }()
	for {
		select {
		case <-ctx.Done():
			// One last flush so counts of a clean shutdown are not lost.
			if err := s.FlushUsage(context.WithoutCancel(ctx)); err != nil {
				s.log.Error("flush uses at shutdown", "err", err)
			}
			return nil
		case <-tick.C:
			if _, err := s.ExpireDue(ctx); err != nil {
				s.log.Error("expire due requests and grants", "err", err)
			}
		case <-flush.C:
			if err := s.FlushUsage(ctx); err != nil {
				s.log.Error("flush grant uses", "err", err)
			}
			if err := s.pruneKeys(ctx); err != nil {
				s.log.Error("prune keys", "err", err)
			}
			// No request waits for review longer than the review deadline.
			s.polls.prune(s.now().Add(-s.cfg.Limits.ReviewDeadline - time.Minute))
		}
	}
}

// expiryBatch bounds one expiry transaction so a backlog cannot hold the
// write lock for long.
const expiryBatch = 1000

// ExpireDue expires everything whose deadline has passed, as of the
// service clock, and returns how many it expired.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.expireBatch(ctx)
		total += n
		if err != nil || n < expiryBatch {
			return total, err
		}
	}
}

func (s *Service) expireBatch(ctx context.Context) (int, error) {
	now := s.now().UTC()
	var due []Due
	err := s.store.View(ctx, func(tx TxReader) error {
		return tx.ForEachDue(now, func(d Due) error {
			if len(due) >= expiryBatch {
				return errStop
			}
			due = append(due, d)
			return nil
		})
	})
	if err != nil && err != errStop {
		return 0, err
	}
	if len(due) == 0 {
		return 0, nil
	}
	var events []Event
	err = s.store.Update(ctx, func(tx Tx) error {
		events = events[:0]
		for _, d := range due {
			switch d.Kind {
			case DueRequest:
				r, err := tx.Request(d.ID)
				if err != nil || r.State != RequestPending {
					continue // decided meanwhile
				}
				r.State, r.ClosedAt = RequestExpired, now
				if err := tx.PutRequest(r); err != nil {
					return err
				}
				e := s.audit(AuditRequestExpired, systemActor, nil, "no decision before the review deadline")
				e.AgentID, e.RequestID = r.AgentID, r.ID
				if err := tx.AppendAudit(e); err != nil {
					return err
				}
				events = append(events, Event{Kind: EventRequestExpired, At: now, Request: r})
			case DueGrant:
				g, err := tx.Grant(d.ID)
				if err != nil || g.State != GrantActive {
					continue
				}
				// The record now says how the grant ended: expired, or, if
				// an epoch ended it first, revoked, for good.
				st, err := statusIn(tx, g, now)
				if err != nil {
					return err
				}
				if st.Live() {
					continue // its expiry moved since the scan
				}
				ended, err := s.endGrantTree(tx, g, *st.Cause)
				if err != nil {
					return err
				}
				cancelled, err := s.cancelFollowOns(tx, ended, now)
				if err != nil {
					return err
				}
				for _, e := range ended {
					events = append(events, Event{Kind: EventGrantEnded, At: now, Grant: e})
				}
				for _, r := range cancelled {
					events = append(events, Event{Kind: EventRequestCancelled, At: now, Request: r})
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.publish(events...)
	// Follow-ons ended with their parent were signalled on the feed.
	s.refreshSignalSeq()
	return len(due), nil
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

// errStop ends a store iteration early.
var errStop error = stopError{}
