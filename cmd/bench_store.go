package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/store"
)

// The phases that need a store prepared before the server starts. The
// store is prepared in this process (without fsync: a crash while
// preparing only loses the preparation), closed, and then served.

// prepareStore opens a new store at path without fsync, runs fill and
// closes it, timing the whole.
func prepareStore(ctx context.Context, path string, fill func(*store.Store) error) (time.Duration, error) {
	t0 := time.Now()
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		return 0, err
	}
	if err := fill(st); err != nil {
		_ = st.Close()
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", path, err)
	}
	return time.Since(t0), ctx.Err()
}

// grantPhases seeds --grants active grants, then measures the server's
// memory over them (memory) and revoke-all on them and on an empty store
// (revoke-all).
func (b *bencher) grantPhases(ctx context.Context, memory, revokeAll bool) error {
	db := filepath.Join(b.dir, "grants.db")
	took, err := prepareStore(ctx, db, func(st *store.Store) error {
		return load.SeedGrants(ctx, st, b.setup, b.f.grants, b.progress)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.progress, "writ bench: seeded %d active grants in %s\n", b.f.grants, took.Round(time.Millisecond))
	b.sum.Seeded.Grants, b.sum.Seeded.GrantsSeconds = b.f.grants, took.Seconds()
	if memory {
		if err := b.memoryPhase(ctx, db); err != nil {
			return err
		}
	}
	if revokeAll {
		return b.revokeAllPhase(ctx, db)
	}
	return nil
}

// memoryPhase serves the store of active grants and reads the server's
// memory after it is ready and after a short cycle load.
func (b *bencher) memoryPhase(ctx context.Context, db string) error {
	child, err := startServeChild(ctx, b.dir, db, b.setup)
	if err != nil {
		return err
	}
	defer child.stop()
	m := memoryResult{Grants: b.f.grants, ReadySeconds: child.ready.Seconds()}
	idle, err := load.ReadProc(child.pid())
	if err != nil {
		return err
	}
	m.RSSAfterStart, m.AnonAfterStart, m.FileAfterStart = idle.RSS, idle.Anon, idle.File
	if fi, err := os.Stat(db); err == nil {
		m.StoreBytes = fi.Size()
	}
	o := b.options("writ", child.issuer, child.pid())
	o.Duration = min(b.f.duration, 5*time.Second)
	r, err := load.Cycle(ctx, o)
	if err != nil {
		return fmt.Errorf("memory: cycle load: %w%s", err, child.logTail())
	}
	after, err := load.ReadProc(child.pid())
	if err != nil {
		return err
	}
	m.Cycles, m.CycleErrors, m.RSSAfterLoad, m.AnonAfterLoad, m.FileAfterLoad, m.PeakRSS = r.Count, r.Errors, after.RSS, after.Anon, after.File, after.HWM
	b.sum.Memory = &m
	if err := child.stop(); err != nil {
		return err
	}
	// Where the file the RSS maps goes, bucket by bucket.
	st, err := store.OpenReadOnly(db, store.Options{})
	if err != nil {
		return err
	}
	m.Store, err = st.Usage()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// startupPhase times `writ serve` from exec to /healthz answering, on a
// store of --audit-entries audit entries and on an empty one.
func (b *bencher) startupPhase(ctx context.Context) error {
	db := filepath.Join(b.dir, "audit.db")
	took, err := prepareStore(ctx, db, func(st *store.Store) error {
		return load.AppendAuditEntries(ctx, st, b.f.auditEntries, b.progress)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.progress, "writ bench: wrote %d audit entries in %s\n", b.f.auditEntries, took.Round(time.Millisecond))
	b.sum.Seeded.AuditEntries, b.sum.Seeded.AuditSeconds = b.f.auditEntries, took.Seconds()
	var res startupResult
	for _, c := range []struct {
		path    string
		entries int
		into    *startupTimes
	}{
		{db, b.f.auditEntries, &res.WithAudit},
		{filepath.Join(b.dir, "empty-start.db"), 0, &res.Empty},
	} {
		var ready []time.Duration
		var rss, anon int64
		for range b.f.starts {
			child, err := startServeChild(ctx, b.dir, c.path, b.setup)
			if err != nil {
				return err
			}
			ready = append(ready, child.ready)
			if s, err := load.ReadProc(child.pid()); err == nil {
				rss, anon = max(rss, s.RSS), max(anon, s.Anon)
			}
			if err := child.stop(); err != nil {
				return fmt.Errorf("stop writ serve: %w%s", err, child.logTail())
			}
		}
		*c.into = newStartupTimes(c.entries, ready, rss, anon)
		fmt.Fprintf(b.progress, "writ bench: start-up ×%d with %d audit entries: median %s, max %s\n",
			len(ready), c.entries, ms(c.into.median), ms(c.into.max))
	}
	b.sum.Startup = &res
	return nil
}
