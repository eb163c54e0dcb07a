package broker_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/brokertest"
	"github.com/writhq/writ/store"
)

func active(t *testing.T, h *harness, raw string) bool {
	t.Helper()
	in, err := h.svc.Introspect(h.ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	return in.Active
}

func TestIntrospection(t *testing.T) {
	h := newHarness(t)
	tok := h.redeem("release-bot", approved(h))
	in, err := h.svc.Introspect(h.ctx, tok.AccessToken)
	if err != nil || !in.Active {
		t.Fatalf("fresh token inactive: %+v %v", in, err)
	}
	c := in.Claims
	if c.Subject != "release-bot" || c.Audience != gitURI || c.SID != tok.Grant.ID || c.Cnf == nil || c.Cnf.JKT != "jkt-1" ||
		c.Writ.Approver.Subject != "priya" || c.Writ.IntentSHA256 != broker.IntentDigest("open PR fixing CVE-2026-1234") {
		t.Errorf("claims = %+v", c)
	}
	for name, raw := range map[string]string{
		"garbage":   "not.a.token",
		"empty":     "",
		"tampered":  tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA",
		"two parts": "a.b",
	} {
		if active(t, h, raw) {
			t.Errorf("%s token active", name)
		}
	}
	h.clock.Advance(21 * time.Minute)
	if active(t, h, tok.AccessToken) {
		t.Error("expired token active")
	}
}

func TestRevokeAllIsAnEpoch(t *testing.T) {
	h := newHarness(t)
	t1 := h.redeem("release-bot", approved(h))
	approvedNotRedeemed := approved(h)
	rev, err := h.svc.RevokeAll(h.ctx, op, "host compromised", true)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Epoch != 1 || !h.svc.IssuerState().Frozen {
		t.Errorf("revocation %+v, issuer %+v", rev, h.svc.IssuerState())
	}
	if active(t, h, t1.AccessToken) {
		t.Error("token survived revoke-all")
	}
	if got := h.svc.EffectiveState(t1.Grant); got != broker.GrantRevoked {
		t.Errorf("effective state %s", got)
	}
	_, err = h.svc.Redeem(h.ctx, "release-bot", approvedNotRedeemed, "")
	wantReason(t, err, broker.ReasonAccessDenied)
	if err := h.svc.Unfreeze(h.ctx, op, "contained"); err != nil {
		t.Fatal(err)
	}
	// Unfreezing never brings a revoked grant back.
	if active(t, h, t1.AccessToken) {
		t.Error("token active again after unfreeze")
	}
	t2 := h.redeem("release-bot", approved(h))
	if !active(t, h, t2.AccessToken) {
		t.Error("new grant after unfreeze inactive")
	}
}

func TestRevokeAgentOnlyThatAgent(t *testing.T) {
	h := newHarness(t)
	bot := h.redeem("release-bot", approved(h))
	sup := h.submit("support", "refunds:create")
	supTok := h.redeem("support", h.approve(sup.ID).RequestID)
	if _, err := h.svc.RevokeAgent(h.ctx, op, "release-bot", "misbehaving", true); err != nil {
		t.Fatal(err)
	}
	if active(t, h, bot.AccessToken) {
		t.Error("release-bot token survived")
	}
	if !active(t, h, supTok.AccessToken) {
		t.Error("support token revoked too")
	}
	_, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"contents:read"}, Resource: gitURI})
	wantCode(t, err, broker.EFORBIDDEN)
	if err := h.svc.Release(h.ctx, op, "release-bot"); err != nil {
		t.Fatal(err)
	}
	if active(t, h, bot.AccessToken) {
		t.Error("release brought a revoked token back")
	}
	h.submit("release-bot", "contents:read")
}

func TestFollowOnRevokedWithParent(t *testing.T) {
	h := newHarness(t)
	parentReq := approved(h)
	parent := h.redeem("release-bot", parentReq)
	child, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "and open the PR",
		Scopes: []string{"pulls:write"}, Resource: gitURI, ParentID: parentReq})
	if err != nil {
		t.Fatal(err)
	}
	if child.Policy == nil || len(child.Policy.Trace) == 0 {
		t.Errorf("no policy trace on follow-on: %+v", child.Policy)
	}
	childTok := h.redeem("release-bot", h.approve(child.ID).RequestID)
	if childTok.Grant.ParentID != parent.Grant.ID {
		t.Fatalf("child grant parent %q, want %q", childTok.Grant.ParentID, parent.Grant.ID)
	}
	late, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "and merge it",
		Scopes: []string{"contents:write"}, Resource: gitURI, ParentID: child.ID})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := h.svc.Revoke(h.ctx, op, parent.Grant.ID, "task went off course")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := h.svc.Request(h.ctx, late.ID); r.State != broker.RequestCancelled {
		t.Errorf("pending follow-on of a revoked grant is %s, want cancelled", r.State)
	}
	if rev.Grants != 2 || active(t, h, childTok.AccessToken) {
		t.Errorf("follow-on survived its parent's revocation (%d ended)", rev.Grants)
	}
	sigs, err := h.svc.Signals(h.ctx, 0, 10)
	if err != nil || len(sigs) != 2 || sigs[0].GrantID != parent.Grant.ID || sigs[1].GrantID != childTok.Grant.ID {
		t.Errorf("signals = %+v, %v", sigs, err)
	}
}

// TestRevocationSurvivesRestart reopens the store and finds every
// revocation in force.
func TestRevocationSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "writ.db")
	c := newClock()
	open := func() (*broker.Service, *store.Store) {
		st, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := broker.New(context.Background(), testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return svc, st
	}
	svc, st := open()
	h := &harness{t: t, svc: svc, st: st, clock: c, ctx: context.Background()}
	revoked := h.redeem("release-bot", approved(h))
	agentRevoked := h.redeem("release-bot", approved(h))
	if _, err := svc.Revoke(h.ctx, op, revoked.Grant.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeAgent(h.ctx, op, "release-bot", "y", false); err != nil {
		t.Fatal(err)
	}
	st.Close()

	svc, st = open()
	defer st.Close()
	h.svc, h.st = svc, st
	for _, tok := range []*broker.IssuedToken{revoked, agentRevoked} {
		if active(t, h, tok.AccessToken) {
			t.Errorf("grant %s active after restart", tok.Grant.ID)
		}
	}
	if n, err := svc.VerifyAudit(h.ctx); err != nil || n == 0 {
		t.Errorf("audit: %d, %v", n, err)
	}
}

// TestEverythingIsAudited follows one token from request to revocation
// through the audit log.
func TestEverythingIsAudited(t *testing.T) {
	h := newHarness(t)
	tok := h.redeem("release-bot", approved(h))
	if _, err := h.svc.Introspect(h.ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.FlushUsage(h.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Revoke(h.ctx, op, tok.Grant.ID, "done early"); err != nil {
		t.Fatal(err)
	}
	_, _ = h.svc.Introspect(h.ctx, tok.AccessToken) // a use after revocation
	if err := h.svc.FlushUsage(h.ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := h.svc.Audit(h.ctx, broker.AuditFilter{GrantID: tok.Grant.ID})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []broker.AuditKind
	for i := len(entries) - 1; i >= 0; i-- {
		kinds = append(kinds, entries[i].Kind)
	}
	want := []broker.AuditKind{broker.AuditDecision, broker.AuditTokenIssued, broker.AuditGrantUsed, broker.AuditGrantRevoked, broker.AuditGrantUsed}
	if len(kinds) != len(want) {
		t.Fatalf("audit kinds %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("audit kinds %v, want %v", kinds, want)
		}
	}
	dec := entries[len(entries)-1]
	if dec.Operator == nil || dec.Operator.Issuer != op.Issuer || dec.Operator.Subject != op.Subject {
		t.Errorf("decision entry does not name the operator: %+v", dec)
	}
	g, _ := h.svc.Grant(h.ctx, tok.Grant.ID)
	if g.Uses != 1 || g.RefusedAfterEnd != 1 || g.AcceptedAfterEnd != 0 {
		t.Errorf("uses %d, refused after end %d, accepted after end %d", g.Uses, g.RefusedAfterEnd, g.AcceptedAfterEnd)
	}
	if n, err := h.svc.VerifyAudit(h.ctx); err != nil || n < 6 {
		t.Errorf("verify: %d, %v", n, err)
	}
}

func TestEventsFollowCommits(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	events := h.svc.Subscribe(ctx)
	id := pending(h)
	h.approve(id)
	for _, want := range []broker.EventKind{broker.EventRequestSubmitted, broker.EventRequestDecided} {
		select {
		case e := <-events:
			if e.Kind != want {
				t.Fatalf("event %s, want %s", e.Kind, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	h := newHarness(t)
	old := h.redeem("release-bot", approved(h))
	k, err := h.svc.RotateKeys(h.ctx, op, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.svc.JWKS().Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want current and retired", len(h.svc.JWKS().Keys))
	}
	fresh := h.redeem("release-bot", approved(h))
	if !active(t, h, old.AccessToken) || !active(t, h, fresh.AccessToken) {
		t.Error("token inactive across rotation")
	}
	c, _ := h.svc.VerifyAccessToken(fresh.AccessToken)
	if c == nil {
		t.Fatal("fresh token does not verify")
	}
	_ = k
}

func TestIntrospectionShowsALiveNarrowing(t *testing.T) {
	h := newHarness(t)
	tok := h.redeem("release-bot", approved(h))
	terms := tok.Grant.Terms.Clone()
	terms.Scopes = []string{"contents:read"}
	terms.TTL = 5 * time.Minute
	if _, err := h.svc.NarrowGrant(h.ctx, op, tok.Grant.ID, terms, "read is enough"); err != nil {
		t.Fatal(err)
	}
	in, err := h.svc.Introspect(h.ctx, tok.AccessToken)
	if err != nil || !in.Active {
		t.Fatalf("inactive after narrowing: %+v %v", in, err)
	}
	if in.Claims.Scope != "contents:read" || in.Claims.Expiry > h.clock.Now().Add(5*time.Minute).Unix() {
		t.Errorf("introspection shows the token's original terms: scope %q exp %d", in.Claims.Scope, in.Claims.Expiry)
	}
}

// hookStore runs hook once, just before the next Batch after it is armed:
// it plays an operator acting between a read and a write of the service.
type hookStore struct {
	broker.Store
	mu    sync.Mutex
	armed bool
	hook  func()
}

func (h *hookStore) Batch(ctx context.Context, fn func(broker.Tx) error) error {
	h.mu.Lock()
	fire := h.armed
	h.armed = false
	h.mu.Unlock()
	if fire {
		h.hook()
	}
	return h.Store.Batch(ctx, fn)
}

// TestNarrowingDuringRedeemIsNotLost: an operator narrows an approved grant
// while its agent's token is being minted; the token carries the narrowed
// terms, not the ones read before.
func TestNarrowingDuringRedeemIsNotLost(t *testing.T) {
	ctx := context.Background()
	hs := &hookStore{Store: brokertest.NewStore()}
	c := newClock()
	svc, err := broker.New(ctx, testConfig(), hs, broker.Options{Issuer: "https://writ.example", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.Submit(ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "fix", Scopes: []string{"contents:read", "contents:write"}, Resource: gitURI, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Approve(ctx, op, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	hs.hook = func() {
		if _, err := svc.NarrowGrant(ctx, op, g.ID, broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 5 * time.Minute}, "read only"); err != nil {
			t.Errorf("narrow: %v", err)
		}
	}
	hs.armed = true
	tok, err := svc.Redeem(ctx, "release-bot", r.ID, "jkt-1")
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	claims, err := svc.VerifyAccessToken(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Scope != "contents:read" || claims.Expiry > c.Now().Add(5*time.Minute).Unix() || tok.Scope != "contents:read" {
		t.Errorf("token minted with the terms from before the narrowing: scope %q exp %d", claims.Scope, claims.Expiry)
	}
}
