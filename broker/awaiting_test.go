package broker_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/store"
)

// TestAwaitingIndexAgreesWithStore (issue 12): the in-memory index of
// requests an agent may still poll for (pending, or approved and not yet
// redeemed) agrees with the store after any sequence of submissions,
// decisions, redemptions, revocations and expiries, both as kept live from
// the events and as rebuilt from the store by a new Service. Seeds 8 to 11
// bound the index at 3 entries: what it keeps still agrees with the store,
// and what it has no room for is redeemed from the store.
func TestAwaitingIndexAgreesWithStore(t *testing.T) {
	const bound = 3
	for seed := range uint64(12) {
		t.Run("", func(t *testing.T) {
			bounded := seed >= 8
			if bounded {
				broker.SetMaxAwaitingForTest(t, bound)
			}
			rng := rand.New(rand.NewPCG(seed, 12))
			path := filepath.Join(t.TempDir(), "writ.db")
			st, err := store.Open(path, store.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			c := newClock()
			ctx := context.Background()
			opts := broker.Options{Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 1000}
			if seed%2 == 1 {
				opts.Policy = approveSome{}
			}
			svc, err := broker.New(ctx, testConfig(), st, opts)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			pick := func() string {
				if len(ids) == 0 {
					return "none"
				}
				return ids[rng.IntN(len(ids))]
			}
			grantOf := func(id string) string {
				r, err := svc.Request(ctx, id)
				if err != nil {
					return ""
				}
				return r.GrantID
			}
			for range 150 {
				// Refusals are part of the sequence: their errors are ignored.
				step := rng.IntN(10)
				if bounded && step >= 7 {
					// No revocations or expiries: more requests stay awaited
					// than the bound holds.
					step = rng.IntN(5)
				}
				switch step {
				case 0, 1, 2:
					scope := []string{"contents:read", "contents:write"}[rng.IntN(2)]
					if r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
						Scopes: []string{scope}, Resource: gitURI, TTL: time.Duration(1+rng.IntN(20)) * time.Minute}); err == nil {
						ids = append(ids, r.ID)
					}
				case 3, 4:
					_, _ = svc.Approve(ctx, op, pick())
				case 5:
					_, _ = svc.Deny(ctx, op, pick(), "no")
				case 6:
					_, _ = svc.Redeem(ctx, "release-bot", pick(), "jkt-1")
				case 7:
					if g := grantOf(pick()); g != "" {
						_, _ = svc.Revoke(ctx, op, g, "done")
					}
				case 8:
					c.Advance(time.Duration(rng.IntN(12)) * time.Minute)
					if _, err := svc.ExpireDue(ctx); err != nil {
						t.Fatal(err)
					}
				case 9:
					if rng.IntN(4) == 0 {
						_, _ = svc.RevokeAll(ctx, op, "drill", false)
					} else if tok, err := svc.Redeem(ctx, "release-bot", pick(), "jkt-1"); err == nil {
						_ = svc.Complete(ctx, "release-bot", tok.JTI)
					}
				}
			}
			want := map[string]string{}
			err = st.View(ctx, func(tx broker.TxReader) error {
				for _, id := range ids {
					r, err := tx.Request(id)
					if err != nil {
						return err
					}
					switch r.State {
					case broker.RequestPending:
						want[id] = ""
					case broker.RequestApproved:
						g, err := tx.Grant(r.GrantID)
						if err != nil {
							return err
						}
						if g.State == broker.GrantActive && g.TokenJTI == "" {
							want[id] = g.ID
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			agree := func(what string, got map[string]string) {
				t.Helper()
				if !bounded {
					if !maps.Equal(got, want) {
						t.Errorf("%s: %d entries %v\nstore says: %d entries %v", what, len(got), got, len(want), want)
					}
					return
				}
				if len(got) > bound {
					t.Errorf("%s: %d entries, bound %d", what, len(got), bound)
				}
				for id, grant := range got {
					if w, ok := want[id]; !ok || w != grant {
						t.Errorf("%s: keeps %s → %q, store says %q (awaited: %v)", what, id, grant, w, ok)
					}
				}
			}
			if bounded && len(want) <= bound {
				t.Fatalf("the store awaits %d requests: the bound of %d is never reached", len(want), bound)
			}
			agree("kept live", svc.AwaitingForTest())
			fresh, err := broker.New(ctx, testConfig(), st, opts)
			if err != nil {
				t.Fatal(err)
			}
			agree("rebuilt", fresh.AwaitingForTest())
			if bounded {
				// Every approved request is redeemed, kept in the index or not.
				for id, grant := range want {
					if grant == "" {
						continue
					}
					if _, err := fresh.Redeem(ctx, "release-bot", id, "jkt-1"); err != nil {
						t.Errorf("redeem %s (grant %s): %v", id, grant, err)
					}
				}
			}
		})
	}
}

// approveSome approves low-risk requests by policy (in the submission's
// commit) and sends the rest to an operator.
type approveSome struct{}

func (approveSome) Evaluate(ctx context.Context, in broker.PolicyInput) broker.PolicyResult {
	r := broker.Baseline(in)
	if !slices.Contains(in.Request.Terms.Scopes, "contents:write") {
		r.Verdict, r.Rule, r.AutoApprove = broker.VerdictAutoApprove, "reads", true
	}
	return r
}

// TestAwaitingIndexFollowsANarrowing: a grant narrowed before its token is
// minted is redeemed against what it allows now. Once the narrowed TTL has
// passed the agent is told the grant expired, as the store would say, not
// refused by a token minted from the grant as it was.
func TestAwaitingIndexFollowsANarrowing(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "writ.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := newClock()
	ctx := context.Background()
	svc, err := broker.New(ctx, testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
		Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Approve(ctx, op, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	narrowed := g.Terms
	narrowed.TTL = 5 * time.Minute
	if _, err := svc.NarrowGrant(ctx, op, g.ID, narrowed, "shorter"); err != nil {
		t.Fatal(err)
	}
	c.Advance(6 * time.Minute)
	_, err = svc.Redeem(ctx, "release-bot", r.ID, "jkt-1")
	if broker.ErrorCode(err) != broker.EEXPIRED {
		t.Errorf("redeeming a grant narrowed to 5m, 6m later: %v (code %s), want the grant expired", err, broker.ErrorCode(err))
	}
}
