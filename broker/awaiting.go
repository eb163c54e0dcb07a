package broker

// awaitingIndex holds in memory every request an agent may still poll the
// token endpoint for: pending, or approved and not yet redeemed (with its
// grant). Redeem answers a poll from it without a read transaction and
// without decoding the request and grant again (issue 12: hot state from
// memory).
//
// The store stays the single source of truth. The index is rebuilt from it
// at start (loadAwaiting) and changed only by published events, which come
// after their commit; a Batch fn, which may run more than once, never
// touches it. It may lag a commit by the moment between the commit and its
// event, never lead it: a poll it answers "pending" may already be
// decided (the agent polls again), and a redemption it starts is checked
// again, record by record, in the transaction that commits the token.
// Guarded by Service.mu.
//
// It is bounded (maxAwaiting entries): a request it has no room for is
// simply not in it, and Redeem reads that one from the store, as it does
// for any request the index does not know. Without the bound, approved
// requests whose agent never redeems them would sit in memory until their
// grants end: 100,000 of them held some 250 MB.
type awaitingIndex map[string]awaiting

// maxAwaiting bounds the awaiting index (a few KiB an entry). A variable
// only so that tests can make it small.
var maxAwaiting = 4096

// keep puts w in the index under id, unless the index is full and id is
// not already in it. An entry already there is always replaced, so a full
// index never keeps a stale one.
func (a awaitingIndex) keep(id string, w awaiting) {
	if _, ok := a[id]; !ok && len(a) >= maxAwaiting {
		return
	}
	a[id] = w
}

// full reports whether a new entry would be refused.
func (a awaitingIndex) full() bool { return len(a) >= maxAwaiting }

// awaiting is one entry: the request as committed, and the grant of an
// approved one.
type awaiting struct {
	req   *TaskRequest
	grant *Grant
}

// observe applies one published event.
func (a awaitingIndex) observe(e Event) {
	if e.Grant != nil && (e.Kind == EventGrantEnded || e.Kind == EventGrantNarrowed) {
		if w, ok := a[e.Grant.RequestID]; ok && w.grant != nil && w.grant.ID == e.Grant.ID {
			if e.Kind == EventGrantEnded {
				delete(a, e.Grant.RequestID)
			} else {
				// A grant narrowed before its token was minted: redeem
				// against what it allows now.
				gc := *e.Grant
				a[e.Grant.RequestID] = awaiting{req: w.req, grant: &gc}
			}
		}
	}
	r := e.Request
	if r == nil {
		return
	}
	switch e.Kind {
	case EventRequestSubmitted, EventRequestUpdated, EventRequestDecided:
		// Copies: an event's records are shared with whoever published it.
		rc := *r
		switch {
		case r.State == RequestPending:
			a.keep(r.ID, awaiting{req: &rc})
		case r.State == RequestApproved && e.Grant != nil && e.Grant.ID == r.GrantID:
			gc := *e.Grant
			a.keep(r.ID, awaiting{req: &rc, grant: &gc})
		default:
			delete(a, r.ID)
		}
	case EventRequestExpired, EventRequestCancelled, EventTokenIssued:
		delete(a, r.ID)
	}
}

// awaitingRequest returns copies of the request id and of its grant (nil
// while pending) from the index, or false when it is not there.
func (s *Service) awaitingRequest(id string) (*TaskRequest, *Grant, bool) {
	s.mu.Lock()
	w, ok := s.awaiting[id]
	s.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	r := *w.req
	if w.grant == nil {
		return &r, nil, true
	}
	g := *w.grant
	return &r, &g, true
}

// loadAwaitingGrant adds to the index, at start, the approved request of
// an active grant no token was minted for. New calls it for each active
// grant in the scan that seeds the history (and keeps pending requests in
// the scan that counts them), so the index costs start-up no scan of its
// own.
func (s *Service) loadAwaitingGrant(tx TxReader, g *Grant) error {
	if g.TokenJTI != "" || s.awaiting.full() {
		return nil
	}
	r, err := tx.Request(g.RequestID)
	if err != nil {
		return err
	}
	if r.State == RequestApproved && r.GrantID == g.ID {
		s.awaiting.keep(r.ID, awaiting{req: r, grant: g})
	}
	return nil
}
