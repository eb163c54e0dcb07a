package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/writhq/writ/broker/agent"
	"github.com/writhq/writ/broker/dpop"
	"github.com/writhq/writ/broker/guard"
)

// The revoke → refused phase measures how long a revocation takes to
// reach guards running in other processes: an agent revokes its own
// token (RFC 7009, which completes its grant and sends a session-revoked
// SET on the feed), and each guard process reports when the last of its
// guards refused the token. A guard process is told its work as JSON
// lines on its standard input and answers in kind on its standard output:
//
//	→ {"check": TOKEN, "key": JWK}   every guard must accept TOKEN (DPoP-bound
//	                                 to the private JWK, which signs the proofs)
//	← {"ok": true} or {"error": "…"}
//	→ {"await": true}                check until every guard refuses TOKEN as revoked
//	← {"refused_at": UNIX_NANO} or {"error": "…"}

// GuardsSpec is what a guard process runs: Guards guards of the load
// resource, each with its own feed stream at Issuer, authenticating as
// the resource server with its key.
type GuardsSpec struct {
	Issuer   string     `json:"issuer"`
	Resource *agent.Key `json:"resource"`
	Guards   int        `json:"guards"`
}

// guardURL is where the guarded API says it lives; proofs name it.
const guardURL = "https://api.load.writ.test"

// guardMsg is one line of the guard protocol, either way.
type guardMsg struct {
	Check     string           `json:"check,omitempty"`
	Key       *jose.JSONWebKey `json:"key,omitempty"`
	Await     bool             `json:"await,omitempty"`
	Ready     int              `json:"ready,omitempty"`
	OK        bool             `json:"ok,omitempty"`
	RefusedAt int64            `json:"refused_at,omitempty"`
	Error     string           `json:"error,omitempty"`
}

// awaitPoll is how often a waiting guard process checks the next guard:
// often enough for a millisecond's resolution, seldom enough to leave
// the cores to the feed it measures.
const awaitPoll = time.Millisecond

// RunGuards runs spec's guards until ctx ends or in closes, answering the
// guard protocol: first {"ready": N} once every guard's feed has caught
// up, then one answer per command.
func RunGuards(ctx context.Context, spec GuardsSpec, in io.Reader, out io.Writer) error {
	if spec.Guards < 1 || spec.Resource == nil || spec.Issuer == "" {
		return errors.New("load: a guard process needs an issuer, the resource's key and at least one guard")
	}
	rs, err := newClient(spec.Resource)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * spec.Guards}}
	guards := make([]*guard.Guard, spec.Guards)
	var running sync.WaitGroup
	defer func() {
		cancel() // the guards stop when the commands do
		running.Wait()
	}()
	for i := range guards {
		g, err := guard.New(guard.Config{Issuer: spec.Issuer, Audience: ResourceURI, PublicURL: guardURL, HTTPClient: hc,
			ClientAssertion: func(_ context.Context, aud string) (string, error) { return rs.assertion(aud) },
			Logger:          slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		guards[i] = g
		running.Go(func() { _ = g.Run(ctx) })
	}
	deadline := time.Now().Add(time.Minute)
	for _, g := range guards {
		for ok, why := g.Ready(); !ok; ok, why = g.Ready() {
			if time.Now().After(deadline) {
				return fmt.Errorf("load: a guard was not ready within a minute: %s", why)
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(guardMsg{Ready: len(guards)}); err != nil {
		return err
	}
	var token string
	var signer *dpop.Signer
	check := func(g *guard.Guard) error {
		p, err := signer.Proof(http.MethodGet, guardURL+"/items", dpop.ProofOptions{AccessToken: token})
		if err != nil {
			return err
		}
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://internal/items", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", p)
		_, err = g.Check(ctx, r)
		return err
	}
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		var m guardMsg
		answer := guardMsg{}
		switch err := json.Unmarshal(lines.Bytes(), &m); {
		case err != nil:
			answer.Error = "not a command: " + err.Error()
		case m.Check != "" && m.Key != nil:
			token = m.Check
			if signer, err = dpop.NewSigner(m.Key, jose.SignatureAlgorithm(m.Key.Algorithm)); err != nil {
				answer.Error = err.Error()
				break
			}
			answer.OK = true
			for i, g := range guards {
				if err := check(g); err != nil {
					answer.OK, answer.Error = false, fmt.Sprintf("guard %d refused a live token: %v", i, err)
					break
				}
			}
		case m.Await && signer != nil:
			answer.RefusedAt, err = awaitRefusals(ctx, guards, check)
			if err != nil {
				answer.Error = err.Error()
			}
		default:
			answer.Error = "unknown command"
		}
		if err := enc.Encode(answer); err != nil {
			return err
		}
	}
	return lines.Err()
}

// awaitRefusals checks each guard in turn until it refuses the token as
// revoked, and returns when the last one did.
func awaitRefusals(ctx context.Context, guards []*guard.Guard, check func(*guard.Guard) error) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for i, g := range guards {
		for {
			var ge *guard.Error
			err := check(g)
			if errors.As(err, &ge) && ge.Reason == guard.ReasonRevoked {
				break
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("guard %d still does not refuse the revoked token after 30 s (last: %v)", i, err)
			}
			if err := sleepCtx(ctx, awaitPoll); err != nil {
				return 0, err
			}
		}
	}
	return time.Now().UnixNano(), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// GuardProcess is the bench's end of one guard process's protocol.
type GuardProcess struct {
	enc   *json.Encoder
	lines *bufio.Scanner
	// Guards is how many guards it runs, from its ready line.
	Guards int
}

// NewGuardProcess waits for the process's ready line on out (its
// standard output) and returns the end that sends commands to in.
func NewGuardProcess(in io.Writer, out io.Reader) (*GuardProcess, error) {
	p := &GuardProcess{enc: json.NewEncoder(in), lines: bufio.NewScanner(out)}
	m, err := p.read()
	if err != nil {
		return nil, err
	}
	if m.Ready < 1 {
		return nil, fmt.Errorf("load: a guard process said %+v before it was ready", m)
	}
	p.Guards = m.Ready
	return p, nil
}

func (p *GuardProcess) read() (guardMsg, error) {
	if !p.lines.Scan() {
		err := p.lines.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return guardMsg{}, fmt.Errorf("load: a guard process stopped answering: %w", err)
	}
	var m guardMsg
	if err := json.Unmarshal(p.lines.Bytes(), &m); err != nil {
		return guardMsg{}, fmt.Errorf("load: a guard process answered %q: %w", p.lines.Text(), err)
	}
	if m.Error != "" {
		return m, errors.New("load: guard process: " + m.Error)
	}
	return m, nil
}

func (p *GuardProcess) check(token string, key *jose.JSONWebKey) error {
	if err := p.enc.Encode(guardMsg{Check: token, Key: key}); err != nil {
		return err
	}
	_, err := p.read()
	return err
}

func (p *GuardProcess) startAwait() error { return p.enc.Encode(guardMsg{Await: true}) }

func (p *GuardProcess) refusedAt() (time.Time, error) {
	m, err := p.read()
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, m.RefusedAt), nil
}

// RevokeToRefused runs rounds rounds: a full cycle mints a DPoP-bound
// token, every guard of every process accepts it, the processes start
// checking, the agent revokes the token at writ's revocation endpoint,
// and the round's time is from that request being sent to the last
// guard refusing the token.
func RevokeToRefused(ctx context.Context, o Options, procs []*GuardProcess, rounds int) ([]time.Duration, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	ep, err := discover(ctx, o.HTTPClient, o.Issuer)
	if err != nil {
		return nil, err
	}
	if ep.revocation == "" {
		return nil, fmt.Errorf("load: %s advertises no revocation endpoint", o.Issuer)
	}
	c, err := newCycler(o, ep)
	if err != nil {
		return nil, err
	}
	if err := c.presign(ctx, rounds); err != nil {
		return nil, err
	}
	var out []time.Duration
	for round := range rounds {
		tok, cl, err := c.cycleWith(ctx)
		if err != nil {
			return nil, fmt.Errorf("load: round %d: mint: %w", round+1, err)
		}
		key := cl.dpopKey
		if err := eachProcess(procs, func(p *GuardProcess) error { return p.check(tok, &key) }); err != nil {
			return nil, fmt.Errorf("load: round %d: %w", round+1, err)
		}
		if err := eachProcess(procs, (*GuardProcess).startAwait); err != nil {
			return nil, err
		}
		a, err := cl.assertion(ep.issuer)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := post(ctx, o.HTTPClient, ep.revocation, authed(a, url.Values{"token": {tok}})); err != nil {
			return nil, fmt.Errorf("load: round %d: revoke: %w", round+1, err)
		}
		var last time.Time
		var mu sync.Mutex
		err = eachProcess(procs, func(p *GuardProcess) error {
			at, err := p.refusedAt()
			mu.Lock()
			if at.After(last) {
				last = at
			}
			mu.Unlock()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("load: round %d: %w", round+1, err)
		}
		out = append(out, last.Sub(t0))
		fmt.Fprintf(o.Progress, "revoke-guards %s round %d/%d: %s\n", bar(time.Duration(round+1), time.Duration(rounds)), round+1, rounds, last.Sub(t0).Round(10*time.Microsecond))
	}
	return out, ctx.Err()
}

// eachProcess runs fn for every process at once and returns the first error.
func eachProcess(procs []*GuardProcess, fn func(*GuardProcess) error) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = fn(p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
