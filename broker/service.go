package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Options tune a Service. The zero value is usable.
type Options struct {
	// Issuer is the public URL agents and resource servers know writ by:
	// the iss of every token.
	Issuer string
	// Alg is the signing algorithm of a new key: ES256 (default), EdDSA or
	// RS256. ES256 is the default because widely used SSF receivers and
	// resource-server JWT libraries accept only RS256 and ES256. A store
	// that already has a current key keeps it (and its algorithm) until
	// the keys are rotated.
	Alg jose.SignatureAlgorithm
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is the entropy source for ids and keys; crypto/rand when nil.
	Rand io.Reader
	// Logger receives operational logs; slog.Default() when nil.
	Logger *slog.Logger
	// Policy evaluates each request at submission; DefaultPolicy when nil.
	Policy Policy
	// PollInterval is the CIBA interval agents are told (default 2s).
	PollInterval time.Duration
	// SubmitRate and SubmitBurst bound how fast one agent may submit
	// requests (default 30 per minute, burst 10), unless the configuration
	// sets limits.submit_rate or an agent's own; MaxPendingPerAgent bounds
	// how many it may have waiting at once (default 20).
	SubmitRate         float64 // requests per second
	SubmitBurst        int
	MaxPendingPerAgent int
	// KeyRetention is how long a retired key stays published beyond the
	// longest token lifetime, for resource servers' JWKS caches (default 10m).
	KeyRetention time.Duration
	// MaxStanding is the longest a standing approval may last (default
	// DefaultMaxStanding).
	MaxStanding time.Duration
	// StoreProbeInterval is how often Run tries a write of its own while
	// the store is marked unwritable (default DefaultStoreProbeInterval).
	StoreProbeInterval time.Duration
}

// Service is writ's domain: it takes requests, records decisions, mints and
// checks tokens, revokes, and tells subscribers what changed. It is safe
// for concurrent use.
type Service struct {
	cfg    *Config
	store  Store
	opts   Options
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger
	policy Policy

	keys    *keyring
	limiter *limiter
	// agentIndex is the position of each agent in cfg.Agents, made at
	// New: with thousands of agents configured, a scan per lookup (a few
	// per cycle) showed in the profile. See AgentConfig.
	agentIndex map[string]int
	agentCount int // len(cfg.Agents) when agentIndex was made
	polls      *pollTracker
	usage      *usageRecorder
	// tokens and clientTokens cache verified task and client tokens.
	tokens       *verifiedCache[AccessClaims]
	clientTokens *verifiedCache[ClientClaims]
	// grants caches the grants introspection reads (grantcache.go).
	grants *grantCache
	// health is the store's write health (storehealth.go).
	health *storeHealth

	mu     sync.Mutex
	subs   map[chan Event]struct{}
	issuer IssuerState
	agents map[string]AgentState
	sigSeq uint64
	sigCh  chan struct{} // closed and replaced on each new signal
	// pendingByAgent counts each agent's pending requests, kept from the
	// events so the per-agent cap costs no scan of the queue.
	pendingByAgent map[string]int
	// awaiting holds the requests an agent may still poll for (awaiting.go).
	awaiting awaitingIndex
	// history is each agent's recent past, for the policy.
	history *History
	// standing are the standing approvals operators made.
	standing *StandingApprovals
}

// New returns a Service over the store, creating the first signing key if
// the store has none.
func New(ctx context.Context, cfg *Config, st Store, opts Options) (*Service, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if opts.Alg == "" {
		opts.Alg = DefaultAlg
	}
	if !slices.Contains(SupportedAlgs, opts.Alg) {
		return nil, Errorf(EINVALID, "unsupported signing algorithm %q (want ES256, EdDSA or RS256)", opts.Alg)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.SubmitRate == 0 {
		opts.SubmitRate = 0.5
	}
	if opts.SubmitBurst == 0 {
		opts.SubmitBurst = 10
	}
	if opts.MaxPendingPerAgent == 0 {
		opts.MaxPendingPerAgent = 20
	}
	if opts.StoreProbeInterval <= 0 {
		opts.StoreProbeInterval = DefaultStoreProbeInterval
	}
	if opts.KeyRetention == 0 {
		opts.KeyRetention = 10 * time.Minute
	}
	grants := newGrantCache(maxCachedGrants)
	st = watchGrants(st, grants)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	health := newStoreHealth(now, st.Path())
	st = healthWatch{Store: st, health: health}
	s := &Service{
		cfg: cfg, store: st, opts: opts, grants: grants, health: health,
		now: opts.Now, rand: opts.Rand, log: opts.Logger, policy: opts.Policy,
		subs:           make(map[chan Event]struct{}),
		agents:         make(map[string]AgentState),
		sigCh:          make(chan struct{}),
		pendingByAgent: make(map[string]int),
		awaiting:       make(awaitingIndex),
		history:        NewHistory(),
		standing:       NewStandingApprovals(opts.MaxStanding),
		agentIndex:     make(map[string]int, len(cfg.Agents)),
		agentCount:     len(cfg.Agents),
	}
	for i := range cfg.Agents {
		if _, dup := s.agentIndex[cfg.Agents[i].ID]; !dup {
			s.agentIndex[cfg.Agents[i].ID] = i // the first, as Config.Agent finds
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.policy == nil {
		s.policy = DefaultPolicy{}
	}
	s.policy = historyPolicy{policy: s.policy, history: s.history}
	s.limiter = newLimiter(opts.SubmitRate, opts.SubmitBurst, s.submitLimitOf)
	s.polls = newPollTracker()
	s.usage = newUsageRecorder()
	s.tokens = newVerifiedCache[AccessClaims](100_000)
	s.clientTokens = newVerifiedCache[ClientClaims](10_000)
	keys, err := s.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	s.keys = keys
	err = st.View(ctx, func(tx TxReader) error {
		var err error
		if s.issuer, err = tx.Issuer(); err != nil {
			return err
		}
		if s.sigSeq, err = tx.LastSignalSeq(); err != nil {
			return err
		}
		if err := tx.ForEachPending(func(r *TaskRequest) error {
			s.pendingByAgent[r.AgentID]++
			s.awaiting.keep(r.ID, awaiting{req: r})
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEachAgentState(func(a AgentState) error {
			s.agents[a.ID] = a
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load issuer state from %s: %w", st.Path(), err)
	}
	if err := s.seedHistory(ctx); err != nil {
		return nil, fmt.Errorf("load active grants from %s: %w", st.Path(), err)
	}
	if err := s.loadStanding(ctx); err != nil {
		return nil, fmt.Errorf("load standing approvals from %s: %w", st.Path(), err)
	}
	return s, nil
}

// Config returns the configuration the service runs with. Callers must not
// modify it.
func (s *Service) Config() *Config { return s.cfg }

// AgentConfig returns the configured agent with the given id, as
// Config().Agent does, through an index made at New. The configuration
// must not change after New (Config says so); the fallback to
// Config().Agent notices only agents added or removed, or an index
// position that no longer holds its id, not an agent renamed in place.
func (s *Service) AgentConfig(id string) (*Agent, bool) {
	i, ok := s.agentIndex[id]
	if ok && i < len(s.cfg.Agents) && s.cfg.Agents[i].ID == id {
		return &s.cfg.Agents[i], true
	}
	if !ok && len(s.cfg.Agents) == s.agentCount {
		// Not an agent (a resource server authenticating, say): no scan
		// of thousands of agents to learn it.
		return nil, false
	}
	return s.cfg.Agent(id)
}

// Issuer returns the issuer URL.
func (s *Service) Issuer() string { return s.opts.Issuer }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.now() }

// IssuerState returns the current issuer state.
func (s *Service) IssuerState() IssuerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer
}

// pendingCount returns how many requests of an agent wait for review.
func (s *Service) pendingCount(agentID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingByAgent[agentID]
}

// agentState returns the cached state of an agent.
func (s *Service) agentState(id string) AgentState {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[id]
	if !ok {
		a.ID = id
	}
	return a
}

// Subscribe returns a channel of events, closed when ctx ends. A
// subscriber that falls more than 4096 events behind gets an EventResync
// and should reload its view.
func (s *Service) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 4096)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
		close(ch)
	}()
	return ch
}

// publish sends events to every subscriber after their commit, and applies
// the issuer and agent state they carry to the service's cache.
func (s *Service) publish(events ...Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		s.history.Observe(e)
		s.awaiting.observe(e)
		if e.Issuer != nil {
			s.issuer = *e.Issuer
		}
		if e.Agent != nil {
			// LastSeen lives in memory only: a state read from the store
			// must not wind it back.
			st := *e.Agent
			if cur, ok := s.agents[st.ID]; ok && cur.LastSeen.After(st.LastSeen) {
				st.LastSeen = cur.LastSeen
			}
			s.agents[st.ID] = st
			e.Agent = &st
		}
		if e.Request != nil {
			switch e.Kind {
			case EventRequestSubmitted:
				s.pendingByAgent[e.Request.AgentID]++
			case EventRequestDecided, EventRequestExpired, EventRequestCancelled:
				if s.pendingByAgent[e.Request.AgentID]--; s.pendingByAgent[e.Request.AgentID] <= 0 {
					delete(s.pendingByAgent, e.Request.AgentID)
				}
			}
		}
		for ch := range s.subs {
			select {
			case ch <- e:
			default:
				// The subscriber is far behind: drop and tell it to resync
				// once it catches up, rather than block the broker.
				s.log.Warn("event subscriber is behind; dropping events", "kind", e.Kind)
				select {
				case <-ch:
				default:
				}
				select {
				case ch <- Event{Kind: EventResync, At: e.At}:
				default:
				}
			}
		}
	}
}

// noteSignals records that the feed advanced to seq, waking waiters.
func (s *Service) noteSignals(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.sigSeq {
		s.sigSeq = seq
		close(s.sigCh)
		s.sigCh = make(chan struct{})
	}
}

// LastSignalSeq returns the sequence number of the newest feed signal.
func (s *Service) LastSignalSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sigSeq
}

// Signals returns up to max feed signals after seq, in order.
func (s *Service) Signals(ctx context.Context, after uint64, max int) ([]Signal, error) {
	var out []Signal
	err := s.store.View(ctx, func(tx TxReader) error {
		var err error
		out, err = tx.Signals(after, max)
		return err
	})
	return out, err
}

// WaitSignals blocks until the feed holds a signal after seq or ctx ends,
// and reports whether one arrived.
func (s *Service) WaitSignals(ctx context.Context, after uint64) bool {
	for {
		s.mu.Lock()
		seq, ch := s.sigSeq, s.sigCh
		s.mu.Unlock()
		if seq > after {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Identifiers writ makes for the records every cycle writes lead with the
// time they were made, then their randomness: the store keys its records
// by id, and a group commit of a hundred cycles then adds to a few pages
// at the end of each bucket instead of rewriting a hundred pages scattered
// through it (issue 12: this cut the bytes written per cycle by more than
// a third). The time is in milliseconds, written so that ids sort as their
// times do; everything after it is as random as the ids were before. Ids
// of records made now and then stay wholly random (newID). Shown
// shortened, an id keeps its random end (ShortID).

// newID returns prefix followed by n random bytes, hex encoded: for the
// ids of records made now and then (revocations, standing approvals).
func (s *Service) newID(prefix string, n int) string {
	b := make([]byte, n)
	s.readRandom(b)
	return prefix + hex.EncodeToString(b)
}

// newTimedID returns prefix followed by the time (6 bytes of milliseconds)
// and n random bytes, hex encoded: for the ids of the records every cycle
// makes (decisions, grants).
func (s *Service) newTimedID(prefix string, n int) string {
	b := make([]byte, 6+n)
	ms := idMillis(s.now())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	s.readRandom(b[6:])
	return prefix + hex.EncodeToString(b)
}

// newSecretID returns an unguessable identifier in the CIBA auth_req_id
// alphabet (base64url): the time in 7 characters, then n random bytes,
// all of which stay secret (knowing the time narrows nothing of them).
//
// It never starts with '-' or '_': an id is typed after commands
// (`writ requests approve ID`), where a leading '-' reads as a flag. The
// time's first character is a digit or a letter from 1972 to 2109.
func (s *Service) newSecretID(n int) string {
	b := make([]byte, n)
	s.readRandom(b)
	id := make([]byte, idTimeChars, idTimeChars+base64.RawURLEncoding.EncodedLen(n))
	ms := idMillis(s.now())
	for i := idTimeChars - 1; i >= 0; i-- {
		id[i] = sortedBase64URL[ms&63]
		ms >>= 6
	}
	return string(base64.RawURLEncoding.AppendEncode(id, b))
}

// sortedBase64URL is the base64url alphabet in byte order, so that the
// time written in it sorts as the time does (base64url's own order does
// not: 'z' comes before '0' in it).
const sortedBase64URL = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// idTimeChars is how many characters of a secret id are its time: 42 bits.
const idTimeChars = 7

// idMillis is t in milliseconds, kept from 2^36 (1972) to 2^42-1 (2109)
// so the first character of the time is never '-' or '_'.
func idMillis(t time.Time) uint64 {
	return uint64(min(max(t.UnixMilli(), 1<<36), 1<<42-1))
}

// readRandom fills b from the entropy source.
func (s *Service) readRandom(b []byte) {
	if _, err := io.ReadFull(s.rand, b); err != nil {
		panic(fmt.Sprintf("entropy source failed: %v", err)) // nothing safe to do without entropy
	}
}

// idKinds are the prefixes of the ids newID and newTimedID make.
var idKinds = []string{"grant-", "dec-", "rev-", "standing-"}

// shortIDTail is how many characters of an id ShortID keeps.
const shortIDTail = 8

// ShortID shortens an id for display: its kind ("grant-") and its last
// eight characters, which are random in every id writ makes (the leading
// ones are the time, alike for ids made together). For a secret id (an
// auth_req_id) that is 48 of its bits, never the whole.
func ShortID(id string) string {
	kind := ""
	for _, k := range idKinds {
		if strings.HasPrefix(id, k) {
			kind = k
			break
		}
	}
	if len(id) <= len(kind)+shortIDTail+2 {
		return id
	}
	return kind + "…" + id[len(id)-shortIDTail:]
}

// audit builds an entry for the current time.
func (s *Service) audit(kind AuditKind, actor string, op *Operator, msg string) *AuditEntry {
	e := &AuditEntry{At: s.now().UTC(), Kind: kind, Actor: actor, Message: msg}
	if op != nil {
		c := *op
		e.Operator = &c
	}
	return e
}

func operatorActor(op Operator) string { return "operator:" + op.ID() }
func agentActor(id string) string      { return "agent:" + id }

const systemActor = "system"
