package tui

import (
	"slices"
	"strings"
	"time"

	"github.com/writhq/writ/broker"
)

// data is the console's copy of the broker's state, kept current by the
// event stream. Pages read it; only the root model's message handling
// changes it, so Update never waits on the broker.
type data struct {
	cfg    *broker.Config
	issuer broker.IssuerState
	// storeBanner says the store cannot write, since when and why
	// (store_banner.go); "" while it can.
	storeBanner string
	agents      []broker.AgentView // configuration order
	agent       map[string]int     // agent id → index in agents

	pending []*broker.TaskRequest // oldest first
	arrived map[string]time.Time  // request id → when it arrived live
	seenReq map[string]bool       // request ids ever loaded, to tell arrivals from reloads

	grants  []*broker.Grant          // oldest first, by creation
	grantAt map[string]int           // grant id → index in grants
	byReq   map[string]*broker.Grant // request id → its grant
	parents map[string]*broker.Grant // request id → parent grant fetched for a follow-on

	// Counts recomputed when grants or epochs change and on each tick, so
	// rendering the header never scans 100,000 grants.
	activeGrants  int
	activeAgents  int
	activeByAgent map[string]int
	// decisions are the latest decisions on each agent's requests seen
	// while the console runs, newest first.
	decisions  map[string][]*broker.Decision
	nextExpiry time.Time // the earliest expiry among active grants: counts change then
	prunedAt   time.Time

	loaded bool
}

func newData() *data {
	return &data{
		agent: map[string]int{}, arrived: map[string]time.Time{}, seenReq: map[string]bool{},
		grantAt: map[string]int{}, byReq: map[string]*broker.Grant{}, parents: map[string]*broker.Grant{},
		activeByAgent: map[string]int{}, decisions: map[string][]*broker.Decision{},
	}
}

// setSnapshot replaces everything with a fresh load.
func (d *data) setSnapshot(s snapshotMsg, now time.Time) {
	d.cfg, d.issuer = s.cfg, s.issuer
	d.setStoreHealth(s.store)
	d.setAgents(s.agents)
	for _, r := range s.pending {
		d.seenReq[r.ID] = true
	}
	d.pending = s.pending
	slices.SortStableFunc(d.pending, func(a, b *broker.TaskRequest) int { return a.CreatedAt.Compare(b.CreatedAt) })
	d.grants = s.grants
	slices.SortStableFunc(d.grants, func(a, b *broker.Grant) int { return a.CreatedAt.Compare(b.CreatedAt) })
	d.reindexGrants()
	d.recount(now)
	d.loaded = true
}

func (d *data) setAgents(agents []broker.AgentView) {
	d.agents = agents
	clear(d.agent)
	for i, a := range agents {
		d.agent[a.Agent.ID] = i
	}
}

func (d *data) reindexGrants() {
	clear(d.grantAt)
	clear(d.byReq)
	for i, g := range d.grants {
		d.grantAt[g.ID] = i
		d.byReq[g.RequestID] = g
	}
}

// agentView returns the configuration and state of an agent.
func (d *data) agentView(id string) (broker.AgentView, bool) {
	i, ok := d.agent[id]
	if !ok {
		return broker.AgentView{Agent: broker.Agent{ID: id}, State: broker.AgentState{ID: id}}, false
	}
	return d.agents[i], true
}

// setAgentState records an agent's new state, reporting whether its grants
// are affected (an epoch bump or a quarantine; not a last-seen time).
func (d *data) setAgentState(st broker.AgentState) bool {
	i, ok := d.agent[st.ID]
	if !ok {
		return false
	}
	old := d.agents[i].State
	d.agents[i].State = st
	return old.Epoch != st.Epoch || old.Quarantined != st.Quarantined
}

// recentDecisions is how many decisions per agent the detail pane recalls.
const recentDecisions = 3

// noteDecision remembers a decision on an agent's request, newest first.
func (d *data) noteDecision(agentID string, dec *broker.Decision) {
	list := append([]*broker.Decision{dec}, d.decisions[agentID]...)
	if len(list) > recentDecisions {
		list = list[:recentDecisions]
	}
	d.decisions[agentID] = list
}

// addRequest adds a newly submitted request, reporting whether it is new.
func (d *data) addRequest(r *broker.TaskRequest, now time.Time) bool {
	if d.seenReq[r.ID] {
		return false
	}
	d.seenReq[r.ID] = true
	d.arrived[r.ID] = now
	// Requests arrive in order almost always; insert in place otherwise.
	i := len(d.pending)
	for i > 0 && d.pending[i-1].CreatedAt.After(r.CreatedAt) {
		i--
	}
	d.pending = slices.Insert(d.pending, i, r)
	return true
}

// updateRequest replaces a pending request with a newer copy (an approval
// recorded, a trace note), reporting whether it was in the queue.
func (d *data) updateRequest(r *broker.TaskRequest) bool {
	if r.State != broker.RequestPending {
		return false
	}
	i := slices.IndexFunc(d.pending, func(p *broker.TaskRequest) bool { return p.ID == r.ID })
	if i < 0 {
		return false
	}
	d.pending[i] = r
	return true
}

// closeRequest drops a request that is no longer pending.
func (d *data) closeRequest(id string) bool {
	i := slices.IndexFunc(d.pending, func(r *broker.TaskRequest) bool { return r.ID == id })
	delete(d.arrived, id)
	if i < 0 {
		return false
	}
	d.pending = slices.Delete(d.pending, i, i+1)
	return true
}

// pendingRequest returns a pending request by id.
func (d *data) pendingRequest(id string) *broker.TaskRequest {
	for _, r := range d.pending {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// putGrant adds or replaces a grant.
func (d *data) putGrant(g *broker.Grant) {
	if i, ok := d.grantAt[g.ID]; ok {
		d.grants[i] = g
	} else {
		d.grantAt[g.ID] = len(d.grants)
		d.grants = append(d.grants, g)
	}
	d.byReq[g.RequestID] = g
}

// status is the grant's status as the domain judges it (broker.StatusOf),
// from the console's copies of the grant and the revocation epochs.
func (d *data) status(g *broker.Grant, now time.Time) broker.GrantStatus {
	var agent broker.AgentState
	if a, ok := d.agentView(g.AgentID); ok {
		agent = a.State
	}
	return broker.StatusOf(g, d.issuer, agent, now)
}

// grantState is the grant's state as of now (see status).
func (d *data) grantState(g *broker.Grant, now time.Time) broker.GrantState {
	return d.status(g, now).State
}

// recount refreshes the active counts.
func (d *data) recount(now time.Time) {
	clear(d.activeByAgent)
	d.activeGrants = 0
	d.nextExpiry = now.Add(time.Hour)
	for _, g := range d.grants {
		if d.grantState(g, now) == broker.GrantActive {
			d.activeGrants++
			d.activeByAgent[g.AgentID]++
			if g.ExpiresAt.Before(d.nextExpiry) {
				d.nextExpiry = g.ExpiresAt
			}
		}
	}
	d.activeAgents = len(d.activeByAgent)
}

// prune drops grants that ended more than keep ago, reporting whether it
// dropped any.
func (d *data) prune(now time.Time, keep time.Duration) bool {
	d.prunedAt = now
	cut := now.Add(-keep)
	kept := d.grants[:0]
	for _, g := range d.grants {
		if st := d.status(g, now); !st.Live() && st.Cause.At.Before(cut) {
			continue
		}
		kept = append(kept, g)
	}
	if len(kept) != len(d.grants) {
		clear(d.grants[len(kept):])
		d.grants = kept
		d.reindexGrants()
		return true
	}
	return false
}

// resource returns the catalogue entry of a resource (resources are exact).
func (d *data) resource(uri string) (*broker.Resource, bool) {
	if d.cfg == nil {
		return nil, false
	}
	return d.cfg.Resource(uri)
}

// risk is the domain's risk of the terms (broker.Resource.RiskOf): the
// highest among every scope and detail action, unknown ones counting as
// critical.
func (d *data) risk(t broker.Terms) broker.Risk {
	if res, ok := d.resource(t.Resource); ok {
		return res.RiskOf(t)
	}
	if len(t.Actions()) == 0 {
		return 0
	}
	return broker.RiskCritical
}

// scopeInfo describes one scope at a resource.
func (d *data) scopeInfo(resource, scope string) broker.Scope {
	if res, ok := d.resource(resource); ok {
		if s, ok := res.Scope(scope); ok {
			return s
		}
	}
	return broker.Scope{Name: scope, Description: "not in the catalogue", Risk: broker.RiskCritical}
}

// requestRisk is the risk to show for a request: the policy's label when
// it has one, else the catalogue's.
func (d *data) requestRisk(r *broker.TaskRequest) broker.Risk {
	risk := d.risk(r.Terms)
	if r.Policy != nil && r.Policy.Risk > risk {
		risk = r.Policy.Risk
	}
	return risk
}

// resourceName is a short name for a resource URI.
func (d *data) resourceName(uri string) string {
	if res, ok := d.resource(uri); ok && res.Name != "" && res.URI == uri {
		return res.Name
	}
	s := strings.TrimPrefix(strings.TrimPrefix(uri, "https://"), "http://")
	return s
}
