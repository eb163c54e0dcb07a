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
	"slices"
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
//	→ {"await": true}                wait until every guard refuses TOKEN as revoked
//	← {"refused_at": UNIX_NANO} or {"error": "…"}
//
// While it waits, a guard process burns no CPU of its own: each guard is
// checked again only when its revocation feed changed what it refuses
// (guard.RevocationsChanged), and its answer is the moment the last guard
// refused, so the figure is writ's and the feed's latency, not the
// generator's.

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
		// Each guard authenticates to the feed with an access token, as a
		// standard SSF receiver does, not an assertion per long poll.
		g, err := guard.New(guard.Config{Issuer: spec.Issuer, Audience: ResourceURI, PublicURL: guardURL, HTTPClient: hc,
			ClientAssertion: func(_ context.Context, aud string) (string, error) { return rs.assertion(aud) },
			FeedAccessToken: true,
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
	proof := func() (string, error) {
		return signer.Proof(http.MethodGet, guardURL+"/items", dpop.ProofOptions{AccessToken: token})
	}
	check := func(g *guard.Guard, p string) error {
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://internal/items", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", p)
		_, err := g.Check(ctx, r)
		return err
	}
	// waits are the guards' states once they accepted the token.
	var waits []guardWait
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
			waits = waits[:0]
			for i, g := range guards {
				// The generation is read before the check: a change after it
				// is looked at again while waiting.
				gen, _ := g.RevocationsChanged()
				p, err := proof()
				if err == nil {
					err = check(g, p)
				}
				// The proof for the first check while waiting is made now,
				// so waiting costs no signature before the first refusal.
				next, perr := proof()
				if err == nil {
					err = perr
				}
				if err != nil {
					answer.OK, answer.Error = false, fmt.Sprintf("guard %d refused a live token: %v", i, err)
					break
				}
				waits = append(waits, guardWait{g: g, gen: gen, proof: next})
			}
		case m.Await && len(waits) == len(guards):
			answer.RefusedAt, err = awaitRefusals(ctx, waits, proof, check)
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

// guardWait is one guard waiting for the token's revocation: the
// generation of its deny set when it accepted the token, and a proof for
// its next check.
type guardWait struct {
	g     *guard.Guard
	gen   uint64
	proof string
}

// awaitRefusals waits, for every guard at once, until its revocation feed
// changes what it refuses and a check then refuses the token as revoked,
// and returns when the last one did. A check that is not a refusal (a
// change about something else) uses up its proof; the next gets a new one.
func awaitRefusals(ctx context.Context, waits []guardWait, proof func() (string, error), check func(*guard.Guard, string) error) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	at := make([]int64, len(waits))
	errs := make([]error, len(waits))
	var wg sync.WaitGroup
	for i := range waits {
		w := &waits[i]
		wg.Go(func() {
			var last error
			for {
				gen, changed := w.g.RevocationsChanged()
				if gen != w.gen {
					w.gen = gen
					err := check(w.g, w.proof)
					var ge *guard.Error
					if errors.As(err, &ge) && ge.Reason == guard.ReasonRevoked {
						at[i] = time.Now().UnixNano()
						return
					}
					last = err
					if w.proof, err = proof(); err != nil {
						errs[i] = err
						return
					}
				}
				select {
				case <-changed:
				case <-ctx.Done():
					errs[i] = fmt.Errorf("guard %d does not refuse the revoked token after 30 s (last check: %v)", i, last)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return slices.Max(at), nil
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
	// PID, when set, is its process, whose CPU time the rounds read.
	PID int
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

// GuardRounds is what RevokeToRefused measured.
type GuardRounds struct {
	// Times are the rounds' times, from the /revoke request to the last
	// refusal.
	Times []time.Duration
	// ServerCPU and GuardCPU are the CPU time the server (when
	// Options.ServerPID is set) and the guard processes (those with a PID)
	// used inside those windows, summed over the rounds; -1 when unknown.
	ServerCPU, GuardCPU time.Duration
}

// RevokeToRefused runs rounds rounds: a full cycle mints a DPoP-bound
// token, every guard of every process accepts it, the processes start
// waiting, the agent revokes the token at writ's revocation endpoint,
// and the round's time is from that request being sent to the last
// guard refusing the token.
func RevokeToRefused(ctx context.Context, o Options, procs []*GuardProcess, rounds int) (*GuardRounds, error) {
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
	out := &GuardRounds{}
	serverCPU, guardCPU := cpuMeter([]int{o.ServerPID}), cpuMeter(guardPIDs(procs))
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
		serverCPU.start()
		guardCPU.start()
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
		serverCPU.stop()
		guardCPU.stop()
		out.Times = append(out.Times, last.Sub(t0))
		fmt.Fprintf(o.Progress, "revoke-guards %s round %d/%d: %s\n", bar(time.Duration(round+1), time.Duration(rounds)), round+1, rounds, last.Sub(t0).Round(10*time.Microsecond))
	}
	out.ServerCPU, out.GuardCPU = serverCPU.total(), guardCPU.total()
	return out, ctx.Err()
}

func guardPIDs(procs []*GuardProcess) []int {
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	return pids
}

// cpuWindows sums the CPU time processes use inside measured windows.
type cpuWindows struct {
	pids   []int
	at     time.Duration
	sum    time.Duration
	broken bool
}

func cpuMeter(pids []int) *cpuWindows {
	c := &cpuWindows{}
	for _, p := range pids {
		if p > 0 {
			c.pids = append(c.pids, p)
		}
	}
	c.broken = len(c.pids) == 0
	return c
}

func (c *cpuWindows) read() time.Duration {
	var t time.Duration
	for _, p := range c.pids {
		s, err := ReadProc(p)
		if err != nil {
			c.broken = true
			return 0
		}
		t += s.CPU
	}
	return t
}

func (c *cpuWindows) start() {
	if !c.broken {
		c.at = c.read()
	}
}

func (c *cpuWindows) stop() {
	if !c.broken {
		c.sum += c.read() - c.at
	}
}

// total is the CPU time inside the windows, or -1 when it is not known.
func (c *cpuWindows) total() time.Duration {
	if c.broken {
		return -1
	}
	return c.sum
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
