package load

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/dpop"
)

// The cycle-operator scenario: agents ask for OperatorScope, which the
// load policy leaves to an operator; operators following the operator
// API's event stream approve each request; the agents poll the token
// endpoint and redeem. The latency is the agent's, from its submission to
// its DPoP-bound token.

// Approver is what the scenario needs of one signed-in operator: the
// operator API's client (broker/opapi/client) has it.
type Approver interface {
	// Subscribe follows the live events, returning once the stream is open.
	Subscribe(ctx context.Context) <-chan broker.Event
	// Pending lists the requests waiting for a decision.
	Pending(ctx context.Context) ([]*broker.TaskRequest, error)
	// Approve approves a request as proposed.
	Approve(ctx context.Context, op broker.Operator, requestID string) (*broker.Grant, error)
}

// ApprovalsInFlight is how many approvals one operator has outstanding at
// once: a console approving from a queue, not one person's pace.
const ApprovalsInFlight = 8

// HasOperatorScope says whether setup's load resource has OperatorScope,
// which the load agents may ask for (setups written before it had not).
func HasOperatorScope(setup *Setup) bool {
	for _, r := range setup.Config.Resources {
		if r.URI == ResourceURI && slices.ContainsFunc(r.Scopes, func(s broker.Scope) bool { return s.Name == OperatorScope }) {
			for _, a := range setup.Config.Agents {
				if !slices.ContainsFunc(a.Ceiling, func(c broker.CeilingEntry) bool { return slices.Contains(c.Scopes, OperatorScope) }) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// approvalWait bounds how long an agent waits for its request to be
// approved before the cycle counts as failed.
const approvalWait = 15 * time.Second

// errPending is authorization_pending at the token endpoint.
var errPending = errors.New("authorization_pending")

// approval is one request's decision, as the bench's operators saw it:
// done closes when it was approved, or the approval failed (err).
type approval struct {
	once sync.Once
	done chan struct{}
	err  error
}

// approvals hands each operator's approval to the agent polling for it.
// Either side may come first: the event stream can outrun the
// acknowledgement of the submission.
type approvals struct{ m sync.Map }

func (a *approvals) get(id string) *approval {
	v, _ := a.m.LoadOrStore(id, &approval{done: make(chan struct{})})
	return v.(*approval)
}

func (a *approvals) settle(id string, err error) {
	ap := a.get(id)
	ap.once.Do(func() {
		ap.err = err
		close(ap.done)
	})
}

// operatorLoad runs the operators: each follows the event stream and
// approves the load agents' OperatorScope requests that hash to it.
type operatorLoad struct {
	ops       []Approver
	approvals *approvals
}

// owner is the operator (of n) that decides request id.
func owner(id string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// isLoadRequest says whether r is one the scenario's agents asked for.
func isLoadRequest(r *broker.TaskRequest) bool {
	return r != nil && strings.HasPrefix(r.AgentID, AgentPrefix) && r.State == broker.RequestPending &&
		slices.Equal(r.Terms.Scopes, []string{OperatorScope})
}

// start subscribes every operator (before any request is submitted) and
// runs them until ctx ends; wait waits for them to stop.
func (l *operatorLoad) start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for i, op := range l.ops {
		events := op.Subscribe(ctx)
		queue := make(chan string, 4096)
		for range ApprovalsInFlight {
			wg.Go(func() {
				for id := range queue {
					_, err := op.Approve(ctx, broker.Operator{}, id)
					if err != nil {
						err = fmt.Errorf("operator %d approving %s: %w", i+1, id, err)
					}
					l.approvals.settle(id, err)
				}
			})
		}
		wg.Go(func() {
			defer close(queue)
			seen := map[string]bool{}
			enqueue := func(r *broker.TaskRequest) {
				if !isLoadRequest(r) || owner(r.ID, len(l.ops)) != i || seen[r.ID] {
					return
				}
				seen[r.ID] = true
				select {
				case queue <- r.ID:
				case <-ctx.Done():
				}
			}
			for ev := range events {
				switch ev.Kind {
				case broker.EventRequestSubmitted:
					enqueue(ev.Request)
				case broker.EventResync:
					// Events were missed: what waits is in the pending list.
					pending, err := op.Pending(ctx)
					if err != nil {
						continue // the next resync or event tries again
					}
					for _, r := range pending {
						enqueue(r)
					}
				}
			}
		})
	}
	return wg.Wait
}

// operatorCycle runs one cycle: submit, wait for the approval (or poll at
// the interval the server asked for), redeem with a DPoP proof.
func (c *cycler) operatorCycle(ctx context.Context, a *approvals) error {
	s, err := c.take()
	if err != nil {
		return err
	}
	cl := c.clients[s.agent]
	hc := c.o.HTTPClient
	ack, err := post(ctx, hc, c.ep.backchannel, authed(s.submit, maps.Clone(c.o.Submit)))
	if err != nil {
		return err
	}
	if ack.AuthReqID == "" {
		return fmt.Errorf("%s: no auth_req_id in the acknowledgement", c.ep.backchannel)
	}
	defer a.m.Delete(ack.AuthReqID)
	ap := a.get(ack.AuthReqID)
	interval := max(time.Duration(ack.Interval)*time.Second, time.Second)
	giveUp := time.NewTimer(approvalWait)
	defer giveUp.Stop()
	assertion, proof := s.redeem, s.proof
	for polls := 0; ; polls++ {
		// The agent is told of the approval at once, as CIBA's ping mode
		// would tell it; without word it polls at the server's interval.
		select {
		case <-ap.done:
			if ap.err != nil {
				return ap.err
			}
		case <-time.After(interval):
		case <-giveUp.C:
			return fmt.Errorf("request %s: not approved within %s", ack.AuthReqID, approvalWait)
		case <-ctx.Done():
			return ctx.Err()
		}
		if polls > 0 { // the presigned pair is used: sign afresh
			if assertion, err = cl.assertion(c.ep.issuer); err != nil {
				return err
			}
			if proof, err = cl.dpop.Proof(http.MethodPost, c.ep.token, dpop.ProofOptions{}); err != nil {
				return fmt.Errorf("load: DPoP proof for %s: %w", cl.id, err)
			}
		}
		tok, err := post(ctx, hc, c.ep.token, authed(assertion, url.Values{
			"grant_type": {grantTypeCIBA}, "auth_req_id": {ack.AuthReqID},
		}), "DPoP", proof)
		if errors.Is(err, errPending) {
			continue
		}
		if err != nil {
			return err
		}
		if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "DPoP") {
			return fmt.Errorf("%s: answer without a DPoP-bound token (token_type %q)", c.ep.token, tok.TokenType)
		}
		return nil
	}
}

// CycleOperator runs the full cycle with operator approvals: o.Clients
// agents at a time each ask for OperatorScope, which the load policy
// leaves to an operator; ops, signed in to the operator API, follow its
// event stream and approve each request; the agent then redeems it for a
// DPoP-bound token. Every step is committed by the server.
func CycleOperator(ctx context.Context, o Options, ops []Approver) (Result, error) {
	if o.Submit == nil {
		o.Submit = url.Values{"scope": {OperatorScope}, "resource": {ResourceURI}, "login_hint": {Queue},
			"binding_message": {"writ bench: one cycle an operator approves"}}
	}
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	if len(ops) == 0 {
		return Result{}, errors.New("load: the operator cycle needs at least one operator")
	}
	c, err := presignedCycler(ctx, o, "cycle-operator", fmt.Sprintf("; %d operators", len(ops)))
	if err != nil {
		return Result{}, err
	}
	opCtx, stopOps := context.WithCancel(ctx)
	l := &operatorLoad{ops: ops, approvals: &approvals{}}
	wait := l.start(opCtx)
	r := drive(ctx, o, "cycle-operator", func(ctx context.Context, _ int, _ int64) error {
		return c.operatorCycle(ctx, l.approvals)
	})
	stopOps()
	wait()
	c.pool = nil
	return r, ctx.Err()
}
