package broker

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// StoreHealth says whether the store can write: what readiness, the
// metrics, the operator API and the console show. It is judged from the
// commits themselves: one that failed as ErrStoreUnavailable (a full disk,
// a file size limit, an I/O error) marks the store unwritable, the next
// one that lands clears the mark. Reads are not judged: a store that
// cannot write still answers them.
type StoreHealth struct {
	Writable bool `json:"writable"`
	// Since is when the store last became unwritable (or writable again);
	// zero while it has written since the start.
	Since time.Time `json:"since,omitzero"`
	// Error is the failed commit's error while the store cannot write,
	// naming the store's file; Cause is only its root ("no space left on
	// device"), for answers that anyone may read (/readyz).
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
	// FailedCommits counts write calls refused as ErrStoreUnavailable since
	// the process started, the write probe's included: one group commit
	// shared by many callers counts once for each of them.
	FailedCommits uint64 `json:"failed_commits"`
}

// RecordStoreProbe is the record namespace of the store's write probe:
// id: "probe"; value: JSON {"at": time of the last probe write}. Nothing
// reads it but the probe: it exists so that the probe writes something
// real (bbolt commits every Put, even of the same bytes).
const RecordStoreProbe = "store.probe"

// DefaultStoreProbeInterval is how often the store's write probe tries a
// write while the store is marked unwritable.
const DefaultStoreProbeInterval = 5 * time.Second

// storeHealth is the last commit's outcome, kept apart from any
// transaction so that readiness and metrics read it without the store.
type storeHealth struct {
	now     func() time.Time
	path    string // the store's file, kept out of Cause
	mu      sync.Mutex
	h       StoreHealth
	changed chan struct{} // one slot: a change not yet published
}

func newStoreHealth(now func() time.Time, path string) *storeHealth {
	return &storeHealth{now: now, path: path, h: StoreHealth{Writable: true}, changed: make(chan struct{}, 1)}
}

func (t *storeHealth) get() StoreHealth {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h
}

// record judges one write transaction's outcome. fn's own errors (a
// refusal, a cancelled context) say nothing about the store's writes and
// leave the mark as it is.
func (t *storeHealth) record(err error) {
	var ok bool
	switch {
	case err == nil:
		ok = true
	case errors.Is(err, ErrStoreUnavailable):
	default:
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok {
		t.h.FailedCommits++
	}
	if ok == t.h.Writable {
		return
	}
	t.h.Writable, t.h.Since, t.h.Error, t.h.Cause = ok, t.now().UTC(), "", ""
	if !ok {
		t.h.Error, t.h.Cause = storeCause(err), t.publicCause(err)
	}
	select {
	case t.changed <- struct{}{}:
	default: // a change is already waiting to be published; it reads the latest
	}
}

// storeCause is a failed commit's error without the generic prefix of
// ErrStoreUnavailable, which every such error starts with: what is left
// says which store and why ("update store /var/lib/writ/writ.db: write
// /var/lib/writ/writ.db: no space left on device").
func storeCause(err error) string {
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, ErrStoreUnavailable.Error()+": "); ok && rest != "" {
		return rest
	}
	return s
}

// rootCause follows err's wrapping to its end (the last of several): for a
// failed commit, the system's error without the paths around it.
func rootCause(err error) error {
	for {
		switch u := err.(type) { //nolint:errorlint // walking the chain by hand
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err
			}
			err = errs[len(errs)-1]
		default:
			return err
		}
	}
}

// publicCause is the root of a failed commit's error with the store's
// path cut to its file name: bbolt does not wrap every error it returns
// (a failed resize is text around the system's error), so the path can be
// in the root's text too.
func (t *storeHealth) publicCause(err error) string {
	s := rootCause(err).Error()
	if t.path != "" {
		s = strings.ReplaceAll(s, t.path, filepath.Base(t.path))
	}
	return s
}

// healthWatch is the Service's store with every write transaction's
// outcome recorded: the one place writes are committed, so no caller has
// to remember to.
type healthWatch struct {
	Store
	health *storeHealth
}

func (w healthWatch) Update(ctx context.Context, fn func(Tx) error) error {
	err := w.Store.Update(ctx, fn)
	w.health.record(err)
	return err
}

func (w healthWatch) Batch(ctx context.Context, fn func(Tx) error) error {
	err := w.Store.Batch(ctx, fn)
	w.health.record(err)
	return err
}

// StoreHealth returns whether the store can write, as the last commit
// (or probe) found it. It reads no store.
func (s *Service) StoreHealth() StoreHealth { return s.health.get() }

// ProbeStore tries one tiny durable write of its own (the probe record)
// and returns its error; through the Service's store, so a write that
// lands clears the unwritable mark and one that fails keeps it.
func (s *Service) ProbeStore(ctx context.Context) error {
	v, err := json.Marshal(struct {
		At time.Time `json:"at"`
	}{s.now().UTC()})
	if err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx Tx) error { return tx.PutRecord(RecordStoreProbe, "probe", v) })
}

// watchStore runs until ctx ends: it publishes an EventStoreHealth for
// each change of the store's write health, and on each tick while the
// store is marked unwritable it probes it, so that a store nothing writes
// to (an idle broker on a disk that was full) is seen to recover.
func (s *Service) watchStore(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.health.changed:
			h := s.health.get()
			if h.Writable {
				s.log.Info("the store writes again", "failed_commits", h.FailedCommits)
			} else {
				s.log.Error("the store cannot write: every write is refused until it can", "err", h.Error)
			}
			s.publish(Event{Kind: EventStoreHealth, At: s.now(), Store: &h})
		case <-tick:
			if s.health.get().Writable {
				continue
			}
			if err := s.ProbeStore(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("store write probe failed", "err", err)
			}
		}
	}
}
