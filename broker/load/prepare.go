package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker"
)

// The phases that need a prepared store build it here, in the bench's own
// process, before the server that is measured starts: the grants through
// the broker's Service (the policy approves each at submission, as in the
// cycle phase), the audit entries through the store.

// seedService opens the domain over a store for preparing it: the load
// configuration and policy, and no per-agent submission limit.
func seedService(ctx context.Context, st broker.Store, setup *Setup) (*broker.Service, error) {
	pol, err := Policy()
	if err != nil {
		return nil, err
	}
	return broker.New(ctx, setup.Config, st, broker.Options{Issuer: "http://127.0.0.1", Policy: pol,
		Logger: slog.New(slog.DiscardHandler), SubmitRate: 1e9, SubmitBurst: 1 << 30, MaxPendingPerAgent: 1 << 30})
}

// SeedGrants makes n active grants (TTL one hour) in st: n task
// requests of the load agents, in turn, each approved by the load policy
// at submission. It reports progress every 10,000 grants.
func SeedGrants(ctx context.Context, st broker.Store, setup *Setup, n int, progress io.Writer) error {
	svc, err := seedService(ctx, st, setup)
	if err != nil {
		return err
	}
	var next, done atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				a := setup.Agents[i%len(setup.Agents)]
				r, err := svc.Submit(ctx, a.AgentID, broker.SubmitInput{LoginHint: Queue, Intent: "writ bench: a seeded grant",
					Scopes: []string{Scope}, Resource: ResourceURI, TTL: time.Hour})
				if err == nil && r.State != broker.RequestApproved {
					err = fmt.Errorf("request %s is %s, not approved by the load policy", r.ID, r.State)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if d := done.Add(1); d%10000 == 0 {
					fmt.Fprintf(progress, "seed grants %s %d/%d\n", bar(time.Duration(d), time.Duration(n)), d, n)
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("load: seed %d grants: %w", n, *p)
	}
	return ctx.Err()
}

// fillerData is the data of a seeded audit entry: about the size of a
// real submission's.
var fillerData = json.RawMessage(`{"scopes":["items:read"],"resource":"https://load.writ.test","ttl":"1h","intent_sha256":"9f2c4d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"}`)

// AppendAuditEntries appends n chained entries to st's audit log, 20,000
// to a transaction, reporting progress every 100,000.
func AppendAuditEntries(ctx context.Context, st broker.Store, n int, progress io.Writer) error {
	const perTx = 20000
	at := time.Now().UTC()
	for done := 0; done < n; {
		k := min(perTx, n-done)
		err := st.Update(ctx, func(tx broker.Tx) error {
			for i := range k {
				e := &broker.AuditEntry{At: at, Kind: broker.AuditRequestSubmitted, Actor: "agent:" + AgentPrefix + "00000",
					AgentID: AgentPrefix + "00000", RequestID: fmt.Sprintf("req-bench-%09d", done+i),
					Message: "writ bench: a seeded audit entry", Data: fillerData}
				if err := tx.AppendAudit(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load: append audit entries %d–%d: %w", done+1, done+k, err)
		}
		done += k
		if done%100000 == 0 || done == n {
			fmt.Fprintf(progress, "seed audit  %s %d/%d\n", bar(time.Duration(done), time.Duration(n)), done, n)
		}
	}
	return nil
}

// RevokeAllTimes revokes everything times times over st, as an operator
// would (durably, audited), and returns how long each call took.
//
// It runs the domain in this process, without HTTP: the floor that the
// bench's revoke-all through the operator API of a writ serve child
// (POST /v1/revoke-all, cmd/bench_operator.go) is read against.
func RevokeAllTimes(ctx context.Context, st broker.Store, setup *Setup, times int) ([]time.Duration, error) {
	svc, err := seedService(ctx, st, setup)
	if err != nil {
		return nil, err
	}
	return TimeRevokeAll(ctx, svc, times)
}

// RevokeAller is what the revoke-all phase needs of an issuer: the
// in-process Service has it, and so has the operator API's client.
type RevokeAller interface {
	RevokeAll(ctx context.Context, op broker.Operator, reason string, freeze bool) (*broker.Revocation, error)
}

// benchOperator is who the bench's revocations are audited under.
var benchOperator = broker.Operator{Issuer: "https://bench.writ.test", Subject: "writ-bench", Name: "writ bench"}

// TimeRevokeAll calls RevokeAll times times and returns each call's time.
func TimeRevokeAll(ctx context.Context, r RevokeAller, times int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, times)
	for i := range times {
		t0 := time.Now()
		if _, err := r.RevokeAll(ctx, benchOperator, fmt.Sprintf("writ bench: revoke-all %d of %d", i+1, times), false); err != nil {
			return nil, fmt.Errorf("load: revoke-all %d: %w", i+1, err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// Percentile is the q-quantile (0 ≤ q ≤ 1) of ds, which it sorts.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(q*float64(len(ds)-1))]
}
