package guard

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/writhq/writ/wire"
)

// denySet is what the revocation feed has said: revoked grants and tokens,
// the agent and global revocation epochs, and grants narrowed while live.
// Every change bumps gen, so a cached token's verdict stays valid, and
// costs one atomic load, until the next change.
type denySet struct {
	gen atomic.Uint64

	mu          sync.RWMutex
	sids        map[string]time.Time // grant id → revoked at
	jtis        map[string]time.Time // token id → revoked at
	agentEpochs map[string]uint64    // agent → tokens with a lower writ.agent_epoch are revoked
	agentBefore map[string]time.Time // agent → tokens issued at or before are revoked (no epoch given)
	epoch       uint64               // tokens with a lower writ.epoch are revoked
	allBefore   time.Time            // tokens issued at or before are revoked (no epoch given)
	narrowed    map[string]*narrowing
	retention   time.Duration
	// changed is closed and replaced by every change, waking watchers.
	changed chan struct{}
}

// narrowing is a grant's narrower terms from a token-claims-change.
type narrowing struct {
	at      time.Time
	scopes  []string // nil: unchanged
	details []wire.AuthorizationDetail
	hasDet  bool
	exp     int64 // 0: unchanged
}

func newDenySet(retention time.Duration) *denySet {
	d := &denySet{sids: map[string]time.Time{}, jtis: map[string]time.Time{}, agentEpochs: map[string]uint64{},
		agentBefore: map[string]time.Time{}, narrowed: map[string]*narrowing{}, retention: retention,
		changed: make(chan struct{})}
	d.gen.Store(1)
	return d
}

// check returns the verdict on e for the current generation.
func (d *denySet) check(e *entry) *verdict {
	gen := d.gen.Load()
	if v := e.verdict.Load(); v != nil && v.gen == gen {
		return v
	}
	d.mu.RLock()
	v := &verdict{gen: gen, principal: e.principal}
	switch {
	case !d.sids[e.sid].IsZero():
		v.revoked = "its grant was revoked"
	case !d.jtis[e.jti].IsZero():
		v.revoked = "it was revoked"
	case e.epoch < d.epoch:
		v.revoked = "everything was revoked"
	case e.agentEpoch < d.agentEpochs[e.agent]:
		v.revoked = "everything its agent held was revoked"
	case !d.allBefore.IsZero() && e.iat <= d.allBefore.Unix():
		v.revoked = "everything was revoked"
	case !d.agentBefore[e.agent].IsZero() && e.iat <= d.agentBefore[e.agent].Unix():
		v.revoked = "everything its agent held was revoked"
	}
	if n := d.narrowed[e.sid]; n != nil && v.revoked == "" {
		v.principal, v.exp = n.apply(e.principal)
	}
	d.mu.RUnlock()
	// A verdict of an older generation may overwrite a newer one here; the
	// next request then recomputes it. Revocations only ever add, so no
	// request sees a revoked token as live.
	e.verdict.Store(v)
	return v
}

// apply returns p narrowed: scopes intersected, details replaced (a
// token-claims-change from writ never widens), exp shortened.
func (n *narrowing) apply(p *Principal) (*Principal, int64) {
	c := *p
	c.Narrowed = true
	if n.scopes != nil {
		c.Scopes = slices.DeleteFunc(slices.Clone(p.Scopes), func(s string) bool { return !slices.Contains(n.scopes, s) })
	}
	if n.hasDet {
		c.Details = n.details
	}
	var exp int64
	if n.exp != 0 && n.exp < p.ExpiresAt.Unix() {
		exp = n.exp
		c.ExpiresAt = time.Unix(n.exp, 0).UTC()
	}
	return &c, exp
}

func (d *denySet) update(fn func()) {
	d.mu.Lock()
	fn()
	d.gen.Add(1)
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// watch returns the current generation and a channel closed when it moves on.
func (d *denySet) watch() (uint64, <-chan struct{}) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.gen.Load(), d.changed
}

func (d *denySet) revokeGrant(sid string, at time.Time) {
	d.update(func() {
		if d.sids[sid].IsZero() {
			d.sids[sid] = at
		}
	})
}

func (d *denySet) revokeToken(jti string, at time.Time) {
	d.update(func() {
		if d.jtis[jti].IsZero() {
			d.jtis[jti] = at
		}
	})
}

func (d *denySet) revokeAgent(agent string, epoch uint64, at time.Time) {
	d.update(func() {
		if epoch > 0 {
			d.agentEpochs[agent] = max(d.agentEpochs[agent], epoch)
		} else if at.After(d.agentBefore[agent]) {
			d.agentBefore[agent] = at
		}
	})
}

func (d *denySet) revokeAll(epoch uint64, at time.Time) {
	d.update(func() {
		if epoch > 0 {
			d.epoch = max(d.epoch, epoch)
		} else if at.After(d.allBefore) {
			d.allBefore = at
		}
	})
}

// narrow records a grant's narrower claims; only the members writ sends
// (scope, authorization_details, exp) are read.
func (d *denySet) narrow(sid string, claims map[string]json.RawMessage, at time.Time) bool {
	n := &narrowing{at: at}
	if raw, ok := claims["scope"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		n.scopes = strings.Fields(s)
		if n.scopes == nil {
			n.scopes = []string{}
		}
	}
	if raw, ok := claims["authorization_details"]; ok {
		if json.Unmarshal(raw, &n.details) != nil {
			return false
		}
		n.hasDet = true
	}
	if raw, ok := claims["exp"]; ok {
		var f float64
		if json.Unmarshal(raw, &f) != nil || f <= 0 || f > 1<<40 {
			return false
		}
		n.exp = int64(f)
	}
	d.update(func() { d.narrowed[sid] = n })
	return true
}

// prune forgets revocations older than the retention: every token they
// concerned has expired. Epochs are kept; they are one number each.
func (d *denySet) prune(now time.Time) {
	cutoff := now.Add(-d.retention)
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.sids {
		if at.Before(cutoff) {
			delete(d.sids, k)
		}
	}
	for k, at := range d.jtis {
		if at.Before(cutoff) {
			delete(d.jtis, k)
		}
	}
	for k, n := range d.narrowed {
		if n.at.Before(cutoff) {
			delete(d.narrowed, k)
		}
	}
}

// sizes returns the numbers of revoked grants, revoked tokens and agents
// with an epoch.
func (d *denySet) sizes() (grants, tokens, agents int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.sids), len(d.jtis), len(d.agentEpochs) + len(d.agentBefore)
}
