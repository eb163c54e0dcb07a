package opapi_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi/client"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

var noOp broker.Operator // the server acts as the token's operator

// race runs fns at once and returns their errors.
func race(fns ...func() error) []error {
	errs := make([]error, len(fns))
	var start sync.WaitGroup
	start.Add(1)
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			start.Wait()
			errs[i] = fn()
		})
	}
	start.Done()
	wg.Wait()
	return errs
}

func TestRacingDecisions(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana, omar := h.Client("dana", nil), h.Client("omar", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		second func(id string) error
	}{
		{"approve and approve", func(id string) error { _, err := omar.Approve(ctx, noOp, id); return err }},
		{"approve and deny", func(id string) error { _, err := omar.Deny(ctx, noOp, id, "not today"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := h.Submit("tag the release")
			errs := race(
				func() error { _, err := dana.Approve(ctx, noOp, req.ID); return err },
				func() error { return tc.second(req.ID) },
			)
			won := 0
			var lost error
			for _, err := range errs {
				if err == nil {
					won++
				} else {
					lost = err
				}
			}
			if won != 1 {
				t.Fatalf("%d decisions won: %v", won, errs)
			}
			var ae *client.APIError
			if !errors.As(lost, &ae) || broker.ErrorCode(lost) != broker.ECONFLICT || ae.Body.Decision == nil {
				t.Fatalf("the loser's error: %v", lost)
			}
			final, err := h.Svc.Request(ctx, req.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ae.Body.Decision.ID != final.DecisionID {
				t.Errorf("the loser was told of decision %s; the request records %s", ae.Body.Decision.ID, final.DecisionID)
			}
			winner := ae.Body.Decision.Operator.Subject
			loser := map[string]string{"u-dana": "u-omar", "u-omar": "u-dana"}[winner]
			if loser == "" || (errs[0] == nil) != (winner == "u-dana") {
				t.Errorf("winner %q does not match who succeeded: %v", winner, errs)
			}
		})
	}
}

func TestRacingRevokes(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	dana, omar := h.Client("dana", nil), h.Client("omar", nil)
	ctx := context.Background()
	g, err := dana.Approve(ctx, noOp, h.Submit("tag the release").ID)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]*struct {
		already bool
		rev     *broker.Revocation
	}, 2)
	errs := race(
		func() error {
			r, err := dana.RevokeGrant(ctx, g.ID, "dana saw something")
			results[0] = &struct {
				already bool
				rev     *broker.Revocation
			}{r.Already, r.Revocation}
			return err
		},
		func() error {
			r, err := omar.RevokeGrant(ctx, g.ID, "omar saw something")
			results[1] = &struct {
				already bool
				rev     *broker.Revocation
			}{r.Already, r.Revocation}
			return err
		},
	)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("both revocations must succeed: %v", errs)
	}
	if results[0].already == results[1].already {
		t.Fatalf("exactly one revocation applies; already: %v %v", results[0].already, results[1].already)
	}
	first := results[0]
	if first.already {
		first = results[1]
	}
	for _, r := range results {
		if r.rev == nil || r.rev.Operator.Subject != first.rev.Operator.Subject || r.rev.Reason != first.rev.Reason {
			t.Errorf("both must describe the revocation that ended the grant: %+v vs %+v", r.rev, first.rev)
		}
	}
	es, err := h.Svc.Audit(ctx, broker.AuditFilter{GrantID: g.ID, Kinds: []broker.AuditKind{broker.AuditGrantRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("%d revocations audited, want 1", len(es))
	}
}

// twoApprovals asks every request for two approvers.
type twoApprovals struct{}

func (twoApprovals) Evaluate(context.Context, broker.PolicyInput) broker.PolicyResult {
	return broker.PolicyResult{Verdict: broker.VerdictReview, RequireApprovals: 2, Trace: []string{"two-person rule"}}
}

// collect gathers a client's events until stopped.
type collect struct {
	mu     sync.Mutex
	events []broker.Event
}

func follow(ctx context.Context, c *client.Client) *collect {
	col := &collect{}
	ch := c.Subscribe(ctx)
	go func() {
		for e := range ch {
			col.mu.Lock()
			col.events = append(col.events, e)
			col.mu.Unlock()
		}
	}()
	return col
}

func (c *collect) snapshot() []broker.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]broker.Event(nil), c.events...)
}

// waitFor waits until cond holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTwoPersonRuleAcrossClients(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{Policy: twoApprovals{}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dana, omar := h.Client("dana", nil), h.Client("omar", nil)
	de, oe := follow(ctx, dana), follow(ctx, omar)
	req := h.Submit("rotate the deploy key", "contents:write")
	g, err := dana.Approve(ctx, noOp, req.ID)
	if err != nil || g != nil {
		t.Fatalf("first approval: grant %v err %v; want it recorded without a grant", g, err)
	}
	if _, err := dana.Approve(ctx, noOp, req.ID); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Fatalf("the same operator approving twice: %v", err)
	}
	g, err = omar.Approve(ctx, noOp, req.ID)
	if err != nil || g == nil {
		t.Fatalf("second approval: grant %v err %v", g, err)
	}
	granted := func(col *collect) func() bool {
		return func() bool {
			for _, e := range col.snapshot() {
				if e.Kind == broker.EventRequestDecided && e.Grant != nil && e.Grant.ID == g.ID {
					return true
				}
			}
			return false
		}
	}
	waitFor(t, "the grant on dana's stream", granted(de))
	waitFor(t, "the grant on omar's stream", granted(oe))
}

// submittedIDs are the request ids of the submissions among events.
func submittedIDs(events []broker.Event) (ids []string, resyncs int) {
	for _, e := range events {
		switch e.Kind {
		case broker.EventRequestSubmitted:
			ids = append(ids, e.Request.ID)
		case broker.EventResync:
			resyncs++
		}
	}
	return ids, resyncs
}

func TestStreamResumesWithoutGapsOrDuplicates(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var connMu sync.Mutex
	var drops, opens int
	c := h.Client("dana", func(up bool, _ error) {
		connMu.Lock()
		defer connMu.Unlock()
		if up {
			opens++
		} else {
			drops++
		}
	})
	col := follow(ctx, c)
	var want []string
	for round := range 5 {
		for range 20 {
			want = append(want, h.Submit("task").ID)
		}
		if round < 4 {
			h.DropConnections()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids, resyncs := submittedIDs(col.snapshot())
		if len(ids) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			connMu.Lock()
			t.Fatalf("got %d of %d submissions, %d resyncs, %d drops, %d opens", len(ids), len(want), resyncs, drops, opens)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Whatever arrives late arrives now; give it no chance to hide.
	want = append(want, h.Submit("last").ID)
	waitFor(t, "the last submission", func() bool { ids, _ := submittedIDs(col.snapshot()); return len(ids) >= len(want) })
	got, resyncs := submittedIDs(col.snapshot())
	if resyncs != 0 {
		t.Errorf("%d resyncs: a reconnect within the ring must resume exactly", resyncs)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d submissions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s: a gap, a duplicate or a reorder", i, got[i], want[i])
		}
	}
	connMu.Lock()
	defer connMu.Unlock()
	if drops == 0 || opens < 2 {
		t.Errorf("the connection was never lost and regained (drops %d, opens %d)", drops, opens)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var connMu sync.Mutex
	var state []bool
	c := h.Client("dana", func(up bool, _ error) {
		connMu.Lock()
		state = append(state, up)
		connMu.Unlock()
	})
	col := follow(ctx, c)
	before := h.Submit("before the restart")
	waitFor(t, "the first submission", func() bool { ids, _ := submittedIDs(col.snapshot()); return len(ids) == 1 })
	h.Restart()
	waitFor(t, "a resync after the restart", func() bool { _, n := submittedIDs(col.snapshot()); return n == 1 })
	after := h.Submit("after the restart")
	waitFor(t, "the second submission", func() bool { ids, _ := submittedIDs(col.snapshot()); return len(ids) == 2 })
	// The same client acts after the restart: its operator token is
	// signed by the store's key, which survived.
	if _, err := c.Approve(ctx, noOp, after.ID); err != nil {
		t.Fatalf("approve after restart: %v", err)
	}
	if _, err := c.Approve(ctx, noOp, before.ID); err != nil {
		t.Fatalf("approve the request from before the restart: %v", err)
	}
	connMu.Lock()
	defer connMu.Unlock()
	sawDown := false
	for i, up := range state {
		if !up {
			sawDown = true
		}
		if sawDown && up && i > 0 {
			return
		}
	}
	t.Errorf("connection states %v: want a loss, then a reconnect", state)
}

// A decision racing the review deadline has exactly one outcome, and the
// stream tells every client the same one.
func TestDecisionRacingTheDeadline(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dana, omar := h.Client("dana", nil), h.Client("omar", nil)
	cols := []*collect{follow(ctx, dana), follow(ctx, omar)}
	const rounds = 6
	var reqs []string
	for range rounds {
		reqs = append(reqs, h.Submit("races the deadline").ID)
	}
	h.Clock.Advance(broker.DefaultLimits.ReviewDeadline) // every request is at its deadline now
	for _, id := range reqs {
		race(
			func() error { _, err := dana.Approve(ctx, noOp, id); return err },
			func() error { _, err := h.Svc.ExpireDue(ctx); return err },
		)
	}
	outcome := func(col *collect, id string) []broker.EventKind {
		var out []broker.EventKind
		for _, e := range col.snapshot() {
			if e.Request != nil && e.Request.ID == id && (e.Kind == broker.EventRequestDecided || e.Kind == broker.EventRequestExpired) {
				out = append(out, e.Kind)
			}
		}
		return out
	}
	for _, id := range reqs {
		r, err := h.Svc.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != broker.RequestApproved && r.State != broker.RequestExpired {
			t.Fatalf("request %s ended %s", id, r.State)
		}
		want := broker.EventRequestDecided
		if r.State == broker.RequestExpired {
			want = broker.EventRequestExpired
		}
		for i, col := range cols {
			waitFor(t, "the outcome on every stream", func() bool { return len(outcome(col, id)) > 0 })
			if got := outcome(col, id); len(got) != 1 || got[0] != want {
				t.Errorf("client %d saw %v for a request that ended %s", i, got, r.State)
			}
		}
	}
}

// An action taken while the server is down waits, and is applied once
// when the server is back.
func TestActionWhileDisconnectedAppliedOnce(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	c := h.Client("dana", nil)
	epoch := h.Svc.IssuerState().Epoch
	h.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := c.RevokeAll(context.Background(), noOp, "while the server was down", false)
		done <- err
	}()
	// Let it find the server down at least once before it comes back.
	waitFor(t, "a failed attempt", func() bool { return c.FailedAttempts() > 0 })
	h.Restart()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the action failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the action never completed")
	}
	if got := h.Svc.IssuerState().Epoch; got != epoch+1 {
		t.Errorf("epoch moved %d times, want once", got-epoch)
	}
}
