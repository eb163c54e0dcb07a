package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/broker/dpop"
)

// signedCycle is what one full cycle sends signed: the assertions of its
// two requests and the DPoP proof of its token request.
type signedCycle struct {
	agent          int
	submit, redeem string
	proof          string
}

// cycler runs full cycles for the load agents, round-robin, so that each
// agent's share stays under the server's per-agent submission limit.
type cycler struct {
	o       Options
	ep      endpoints
	clients []*client
	pool    []signedCycle
	next    atomic.Int64
}

func newCycler(o Options, ep endpoints) (*cycler, error) {
	c := &cycler{o: o, ep: ep}
	for _, k := range o.Setup.Agents {
		cl, err := newClient(k)
		if err != nil {
			return nil, err
		}
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

// sign signs cycle i's assertions and proof.
func (c *cycler) sign(i int) (signedCycle, error) {
	a := i % len(c.clients)
	cl := c.clients[a]
	submit, err := cl.assertion(c.ep.issuer)
	if err != nil {
		return signedCycle{}, err
	}
	redeem, err := cl.assertion(c.ep.issuer)
	if err != nil {
		return signedCycle{}, err
	}
	proof, err := cl.dpop.Proof(http.MethodPost, c.ep.token, dpop.ProofOptions{})
	if err != nil {
		return signedCycle{}, fmt.Errorf("load: DPoP proof for %s: %w", cl.id, err)
	}
	return signedCycle{agent: a, submit: submit, redeem: redeem, proof: proof}, nil
}

// presign signs n cycles on every core, before anything is measured.
func (c *cycler) presign(ctx context.Context, n int) error {
	c.pool = make([]signedCycle, n)
	var next atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				s, err := c.sign(i)
				if err != nil {
					errs <- err
					return
				}
				c.pool[i] = s
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// take returns the next cycle's signed material, or errExhausted when
// every presigned cycle has been handed out.
func (c *cycler) take() (signedCycle, error) {
	i := int(c.next.Add(1) - 1)
	if i >= len(c.pool) {
		return signedCycle{}, errExhausted
	}
	s := c.pool[i]
	c.pool[i] = signedCycle{} // let it go once used
	return s, nil
}

// cycle asks for a task, which the policy approves at submission, and
// redeems it for a DPoP-bound token, which it returns.
func (c *cycler) cycle(ctx context.Context) (string, error) {
	tok, _, err := c.cycleWith(ctx)
	return tok, err
}

// cycleWith is cycle, also returning the client that holds the token.
func (c *cycler) cycleWith(ctx context.Context) (string, *client, error) {
	s, err := c.take()
	if err != nil {
		return "", nil, err
	}
	cl := c.clients[s.agent]
	tok, err := c.run(ctx, s)
	return tok, cl, err
}

// run sends one presigned cycle.
func (c *cycler) run(ctx context.Context, s signedCycle) (string, error) {
	hc := c.o.HTTPClient
	ack, err := post(ctx, hc, c.ep.backchannel, authed(s.submit, maps.Clone(c.o.Submit)))
	if err != nil {
		return "", err
	}
	if ack.AuthReqID == "" {
		return "", fmt.Errorf("%s: no auth_req_id in the acknowledgement", c.ep.backchannel)
	}
	tok, err := post(ctx, hc, c.ep.token, authed(s.redeem, url.Values{
		"grant_type": {grantTypeCIBA}, "auth_req_id": {ack.AuthReqID},
	}), "DPoP", s.proof)
	if err != nil {
		return "", err
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "DPoP") {
		return "", fmt.Errorf("%s: answer without a DPoP-bound token (token_type %q)", c.ep.token, tok.TokenType)
	}
	return tok.AccessToken, nil
}

// presignedCycler discovers the issuer's endpoints and makes a cycler
// with its cycles' signatures made for o.Duration at o.PresignRate,
// saying so on o.Progress (phase names the phase, extra ends the line).
func presignedCycler(ctx context.Context, o Options, phase, extra string) (*cycler, error) {
	ep, err := discover(ctx, o.HTTPClient, o.Issuer)
	if err != nil {
		return nil, err
	}
	c, err := newCycler(o, ep)
	if err != nil {
		return nil, err
	}
	n := int(float64(o.PresignRate) * o.Duration.Seconds())
	t0 := time.Now()
	if err := c.presign(ctx, n); err != nil {
		return nil, fmt.Errorf("load: presign %d cycles: %w", n, err)
	}
	fmt.Fprintf(o.Progress, "%s %s: presigned %d cycles for %d agents in %s%s\n", o.Target, phase, n, len(c.clients),
		time.Since(t0).Round(time.Millisecond), extra)
	return c, nil
}

// Cycle runs the full-cycle scenario: o.Clients agents at a time, each
// cycle a task request the load policy approves at submission and its
// redemption for a DPoP-bound token, every step committed by the server.
func Cycle(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	c, err := presignedCycler(ctx, o, "cycle", "")
	if err != nil {
		return Result{}, err
	}
	r := drive(ctx, o, "cycle", func(ctx context.Context, _ int, _ int64) error {
		_, err := c.cycle(ctx)
		return err
	})
	c.pool = nil
	return r, ctx.Err()
}

func (o Options) check() error {
	switch {
	case o.Setup == nil || len(o.Setup.Agents) == 0 || o.Setup.Resource == nil:
		return errors.New("load: a setup with agents and the resource's key is required")
	case o.Issuer == "":
		return errors.New("load: the issuer URL is required")
	case o.Duration > MaxDuration:
		return fmt.Errorf("load: a scenario runs at most %s, not %s", MaxDuration, o.Duration)
	}
	return nil
}
