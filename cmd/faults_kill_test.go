package cmd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/load"
	"github.com/writhq/writ/broker/opapi/client"
)

// ledger is what the clients were told before the kill: only what an
// answer of 200 acknowledged is in it.
type ledger struct {
	mu        sync.Mutex
	requests  map[string]int       // auth_req_id → agent
	approvals map[string]string    // grant → decision (an operator's approval)
	denials   map[string]string    // decision → request
	tokens    map[string]tokenSeen // jti → token
	// revoked are the tokens whose revocation was acknowledged: their
	// grant's, their agent's (sent after the token was handed over), or
	// the agent's own (RFC 7009, completing the grant).
	revoked map[string]string // jti → how
	// grantRevoked are grants an operator's revocation ended.
	grantRevoked map[string]bool
}

type tokenSeen struct {
	agent        int
	grant, token string
}

func newLedger() *ledger {
	return &ledger{requests: map[string]int{}, approvals: map[string]string{}, denials: map[string]string{},
		tokens: map[string]tokenSeen{}, revoked: map[string]string{}, grantRevoked: map[string]bool{}}
}

func (l *ledger) do(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn()
}

// decideAsk is an operator agent's request handed to the operator.
type decideAsk struct {
	id    string
	reply chan error // nil: approved; ErrDenied-like: denied
}

// TestFaultKillUnderLoad (issue 12, faults) runs `writ serve` as a child
// process under concurrent load (agents submitting, the policy approving
// half of them, an operator approving, denying and revoking the others'
// through the operator API, agents redeeming and revoking their own
// tokens, a resource server introspecting), kills it with SIGKILL at a
// random moment, and restarts it on the same store, several times. After
// each kill: bbolt's consistency check and the audit chain pass; every
// acknowledged request, decision and token is in the store, no token
// without its grant, no grant without its decision and request; after
// the restart every acknowledged revocation is still in force
// (introspection says inactive, a guard refuses the token as revoked).
// WRIT_FAULT_ROUNDS sets the number of kills (default 3).
func TestFaultKillUnderLoad(t *testing.T) {
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("WRIT_FAULT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	const agents = 8
	r := newFaultRig(t, agents)
	led := newLedger()
	child := r.start("serve-0")
	for round := range rounds {
		ctx, cancel := context.WithCancel(t.Context())
		op := r.operator(ctx)
		var wg sync.WaitGroup
		asks := make(chan decideAsk)
		for i := range agents {
			c := r.agent(ctx, i)
			wg.Go(func() { agentLoad(ctx, r, led, c, i, asks) })
		}
		for range 2 {
			wg.Go(func() { operatorLoad(ctx, led, op, asks) })
		}
		wg.Go(func() { introspectLoad(ctx, r, led) })

		// Kill it in full flight: after some acknowledged work, and a
		// random while later.
		waitUntil(t, "acknowledged work before the kill", func() bool {
			led.mu.Lock()
			defer led.mu.Unlock()
			how := map[string]int{}
			for _, h := range led.revoked {
				how[h]++
			}
			return len(led.tokens) >= 20*(round+1) && len(led.denials) > round && len(how) == 3
		})
		time.Sleep(time.Duration(rand.IntN(700)) * time.Millisecond)
		if err := syscall.Kill(child.pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-child.exited
		cancel()
		wg.Wait()

		checkStoreAfterKill(t, r, led, fmt.Sprintf("round %d", round))
		child = r.start(fmt.Sprintf("serve-%d", round+1))
		checkRevocationsInForce(t, r, led, fmt.Sprintf("round %d", round))
	}
	if err := child.stop(); err != nil {
		t.Fatalf("writ serve did not stop cleanly: %v%s", err, child.logTail())
	}
	checkStoreAfterKill(t, r, led, "after a clean stop")
	led.do(func() {
		how := map[string]int{}
		for _, h := range led.revoked {
			how[h]++
		}
		t.Logf("%d kills: %d requests, %d operator approvals, %d denials, %d tokens; tokens revoked by %v",
			rounds, len(led.requests), len(led.approvals), len(led.denials), len(led.tokens), how)
	})
}

// agentLoad is one agent's loop: ask, get decided (by the policy for even
// agents, by the operator for odd ones), redeem, and now and then revoke
// its own token.
func agentLoad(ctx context.Context, r *faultRig, led *ledger, c *agent.Client, i int, asks chan<- decideAsk) {
	for n := 0; ctx.Err() == nil; n++ {
		p, err := c.Request(ctx, agent.TaskRequest{Intent: fmt.Sprintf("fault test %d", n),
			Scopes: []string{load.Scope}, Resource: load.ResourceURI})
		if err != nil {
			return // the server is gone
		}
		led.do(func() { led.requests[p.ID] = i })
		if i%2 == 1 {
			reply := make(chan error, 1)
			select {
			case asks <- decideAsk{id: p.ID, reply: reply}:
			case <-ctx.Done():
				return
			}
			select {
			case err := <-reply:
				if err != nil {
					continue // denied, or the operator's call did not go through
				}
			case <-ctx.Done():
				return
			}
		}
		task, err := c.Poll(ctx, p)
		for errors.Is(err, agent.ErrPending) && ctx.Err() == nil {
			time.Sleep(p.Interval)
			task, err = c.Poll(ctx, p)
		}
		if err != nil {
			if errors.Is(err, agent.ErrDenied) {
				continue
			}
			return
		}
		jti, grant, err := tokenClaims(task.AccessToken)
		if err != nil {
			r.t.Errorf("agent %d: token: %v", i, err)
			return
		}
		led.do(func() { led.tokens[jti] = tokenSeen{agent: i, grant: grant, token: task.AccessToken} })
		if n%4 == 3 {
			if err := c.Revoke(ctx, task.AccessToken); err != nil {
				return
			}
			led.do(func() { led.revoked[jti] = "the agent's own revocation" })
		}
	}
}

// operatorLoad decides the operator agents' requests (one in five
// denied), revokes every third grant it approved, and every so often all
// of one agent's grants.
func operatorLoad(ctx context.Context, led *ledger, op *client.Client, asks <-chan decideAsk) {
	for n := 0; ; n++ {
		var a decideAsk
		select {
		case a = <-asks:
		case <-ctx.Done():
			return
		}
		if n%5 == 4 {
			d, err := op.Deny(ctx, broker.Operator{}, a.id, "fault test")
			if err == nil {
				led.do(func() { led.denials[d.ID] = a.id })
				err = errors.New("denied")
			}
			a.reply <- err
			continue
		}
		g, err := op.Approve(ctx, broker.Operator{}, a.id)
		if err == nil {
			led.do(func() { led.approvals[g.ID] = g.DecisionID })
		}
		a.reply <- err
		if err != nil {
			continue
		}
		if n%3 == 2 {
			// Revoke a grant whose token the agent already holds, when
			// there is one.
			var target string
			led.do(func() {
				for jti, ts := range led.tokens {
					if led.revoked[jti] == "" {
						target = ts.grant
						break
					}
				}
			})
			if target != "" {
				if _, err := op.RevokeGrant(ctx, target, "fault test"); err == nil {
					led.do(func() {
						led.grantRevoked[target] = true
						for jti, ts := range led.tokens {
							if ts.grant == target && led.revoked[jti] == "" {
								led.revoked[jti] = "its grant's revocation"
							}
						}
					})
				}
			}
		}
		if n%7 == 6 {
			// Revoke everything agent 1 holds: the tokens it was handed
			// before the call are then revoked.
			var before []string
			led.do(func() {
				for jti, ts := range led.tokens {
					if ts.agent == 1 {
						before = append(before, jti)
					}
				}
			})
			if _, err := op.RevokeAgent(ctx, broker.Operator{}, load.AgentPrefix+"00001", "fault test", false); err == nil {
				led.do(func() {
					for _, jti := range before {
						if led.revoked[jti] == "" {
							led.revoked[jti] = "its agent's revocation"
						}
					}
				})
			}
		}
	}
}

// introspectLoad keeps a resource server asking about tokens.
func introspectLoad(ctx context.Context, r *faultRig, led *ledger) {
	for ctx.Err() == nil {
		var tok string
		led.do(func() {
			for _, ts := range led.tokens {
				tok = ts.token
				break
			}
		})
		if tok == "" {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if _, err := r.introspect(ctx, tok); err != nil {
			return
		}
	}
}

// checkStoreAfterKill opens the store the killed server left and checks
// it against the ledger.
func checkStoreAfterKill(t *testing.T, r *faultRig, led *ledger, what string) {
	t.Helper()
	st := r.openStore(what)
	defer st.Close()
	led.mu.Lock()
	defer led.mu.Unlock()
	issued := map[string]bool{}
	err := st.View(context.Background(), func(tx broker.TxReader) error {
		for id, agent := range led.requests {
			req, err := tx.Request(id)
			if err != nil {
				return fmt.Errorf("acknowledged request %s lost: %w", id, err)
			}
			// The policy approves in the submission's own transaction: an
			// acknowledged submission of a policy agent was approved.
			if agent%2 == 0 && (req.State == broker.RequestPending || req.GrantID == "" || req.DecisionID == "") {
				return fmt.Errorf("request %s of a policy-approved agent was acknowledged but is %s, grant %q", id, req.State, req.GrantID)
			}
		}
		for gid, did := range led.approvals {
			g, err := tx.Grant(gid)
			if err != nil {
				return fmt.Errorf("acknowledged approval: grant %s lost: %w", gid, err)
			}
			if g.DecisionID != did {
				return fmt.Errorf("grant %s names decision %s, the operator was told %s", gid, g.DecisionID, did)
			}
		}
		for did, rid := range led.denials {
			d, err := tx.Decision(did)
			if err != nil {
				return fmt.Errorf("acknowledged denial %s lost: %w", did, err)
			}
			if d.Kind != broker.DecisionDeny || d.RequestID != rid {
				return fmt.Errorf("denial %s is %s of %s, want a denial of %s", did, d.Kind, d.RequestID, rid)
			}
		}
		for jti, ts := range led.tokens {
			tok, err := tx.Token(jti)
			if err != nil {
				return fmt.Errorf("acknowledged token %s lost: %w", jti, err)
			}
			if tok.GrantID != ts.grant {
				return fmt.Errorf("token %s names grant %s, its sid is %s", jti, tok.GrantID, ts.grant)
			}
		}
		for gid := range led.grantRevoked {
			g, err := tx.Grant(gid)
			if err != nil {
				return fmt.Errorf("revoked grant %s lost: %w", gid, err)
			}
			if g.State == broker.GrantActive {
				return fmt.Errorf("grant %s, whose revocation was acknowledged, is active", gid)
			}
		}
		if err := tx.ForEachAudit(1, func(e *broker.AuditEntry) error {
			if e.Kind == broker.AuditTokenIssued {
				issued[e.JTI] = true
			}
			return nil
		}); err != nil {
			return err
		}
		// Every token, acknowledged or not, has its grant; every grant its
		// decision and its request; every token its audit entry.
		for jti := range issued {
			tok, err := tx.Token(jti)
			if err != nil {
				return fmt.Errorf("audited token %s has no record: %w", jti, err)
			}
			if g, err := tx.Grant(tok.GrantID); err != nil || g.TokenJTI != jti {
				return fmt.Errorf("token %s has no grant (%s): %v", jti, tok.GrantID, err)
			}
		}
		return tx.ForEachGrant(func(g *broker.Grant) error {
			d, err := tx.Decision(g.DecisionID)
			if err != nil {
				return fmt.Errorf("grant %s has no decision %s: %w", g.ID, g.DecisionID, err)
			}
			if d.RequestID != g.RequestID {
				return fmt.Errorf("grant %s: decision %s is of request %s, not %s", g.ID, d.ID, d.RequestID, g.RequestID)
			}
			if _, err := tx.Request(g.RequestID); err != nil {
				return fmt.Errorf("grant %s has no request %s: %w", g.ID, g.RequestID, err)
			}
			if g.TokenJTI != "" {
				tok, err := tx.Token(g.TokenJTI)
				if err != nil || tok.GrantID != g.ID {
					return fmt.Errorf("grant %s names token %s that has no record: %v", g.ID, g.TokenJTI, err)
				}
				if !issued[g.TokenJTI] {
					return fmt.Errorf("token %s of grant %s has no audit entry", g.TokenJTI, g.ID)
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkRevocationsInForce asks the restarted server about every token
// whose revocation was acknowledged, by introspection and at a guard.
func checkRevocationsInForce(t *testing.T, r *faultRig, led *ledger, what string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := r.guard(ctx)
	type revokedToken struct {
		jti, how string
		ts       tokenSeen
	}
	var all []revokedToken
	led.do(func() {
		for jti, how := range led.revoked {
			all = append(all, revokedToken{jti, how, led.tokens[jti]})
		}
	})
	for _, rt := range all {
		active, err := r.introspect(ctx, rt.ts.token)
		if err != nil {
			t.Fatalf("%s: introspect %s: %v", what, rt.jti, err)
		}
		if active {
			t.Fatalf("%s: token %s is active after the restart, though %s was acknowledged", what, rt.jti, rt.how)
		}
		err = r.check(ctx, g, rt.ts.agent, rt.ts.token)
		var ge *guard.Error
		if !errors.As(err, &ge) || ge.Reason != guard.ReasonRevoked {
			t.Fatalf("%s: the guard answers %v for token %s (%s acknowledged), want %s", what, err, rt.jti, rt.how, guard.ReasonRevoked)
		}
	}
}
