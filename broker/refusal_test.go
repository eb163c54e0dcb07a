package broker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store/storetest"
)

// runCountingStore counts Batch calls and the runs of their fns. The first
// fn run after armed is set waits until want calls have been made, so the
// calls behind it queue up and share the next group commit.
type runCountingStore struct {
	broker.Store
	calls, runs atomic.Int64
	armed       atomic.Bool
	want        int64
}

func (s *runCountingStore) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	s.calls.Add(1)
	return s.Store.Batch(ctx, func(tx broker.Tx) error {
		s.runs.Add(1)
		if s.armed.CompareAndSwap(true, false) {
			deadline := time.Now().Add(30 * time.Second)
			for s.calls.Load() < s.want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // waiting on a condition, with a deadline
			}
		}
		return fn(tx)
	})
}

// TestRefusalsDoNotRerunTheGroup (issue 12): decisions and denials that
// are refused (the request already decided) say so before writing anything and hand the refusal back as a value, so
// the group commit they share with other calls runs every fn exactly once.
// Returned as the fn's error, each refusal made the store run the rest of
// its group again.
func TestRefusalsDoNotRerunTheGroup(t *testing.T) {
	st := &runCountingStore{Store: storetest.MustOpen(t)}
	c := newClock()
	ctx := context.Background()
	svc, err := broker.New(ctx, testConfig(), st, broker.Options{
		Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	submit := func() (*broker.TaskRequest, error) {
		return svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "read the repository",
			Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 20 * time.Minute})
	}
	const n = 20
	var pending, decided []string
	for i := range 2 * n {
		r, err := submit()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			pending = append(pending, r.ID)
			continue
		}
		decided = append(decided, r.ID)
		if _, err := svc.Approve(ctx, op, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	type call struct {
		name string
		run  func() error
		want string // error code; "" for success
	}
	var calls []call
	for i := range n {
		calls = append(calls,
			call{"approve pending", func() error { _, err := svc.Approve(ctx, op, pending[i]); return err }, ""},
			call{"approve decided", func() error { _, err := svc.Approve(ctx, op, decided[i]); return err }, broker.ECONFLICT})
		if i%2 == 0 {
			calls = append(calls,
				call{"deny decided", func() error { _, err := svc.Deny(ctx, op, decided[i], "no"); return err }, broker.ECONFLICT},
				call{"submit", func() error { _, err := submit(); return err }, ""})
		}
	}
	callsBefore, runsBefore := st.calls.Load(), st.runs.Load()
	st.want = callsBefore + int64(len(calls))
	st.armed.Store(true)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { errs[i] = c.run() })
	}
	wg.Wait()
	for i, c := range calls {
		if got := broker.ErrorCode(errs[i]); got != c.want {
			t.Errorf("%s: %v (code %q), want code %q", c.name, errs[i], got, c.want)
		}
	}
	batches, runs := st.calls.Load()-callsBefore, st.runs.Load()-runsBefore
	if runs != batches {
		t.Errorf("%d fn runs for %d Batch calls: refusals made the group run again", runs, batches)
	}
	for _, id := range pending {
		r, err := svc.Request(ctx, id)
		if err != nil || r.State != broker.RequestApproved || r.GrantID == "" {
			t.Errorf("request %s: %+v %v, want approved with a grant", id, r, err)
		}
	}
	if _, err := broker.VerifyAuditLog(ctx, st); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}
