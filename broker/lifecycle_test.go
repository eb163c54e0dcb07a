package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// TestRequestTransitions walks every request transition, legal and illegal.
func TestRequestTransitions(t *testing.T) {
	tests := []struct {
		name string
		// setup brings a fresh request to a state and returns its id.
		setup func(h *harness) string
		act   func(h *harness, id string) error
		code  string // "" for success
		state broker.RequestState
	}{
		{"pending→approved", pending, approve, "", broker.RequestApproved},
		{"pending→approved narrowed", pending, narrowReadOnly, "", broker.RequestApproved},
		{"pending→denied", pending, deny, "", broker.RequestDenied},
		{"pending→expired", pending, expire, "", broker.RequestExpired},
		{"pending→cancelled by quarantine", pending, quarantine, "", broker.RequestCancelled},
		{"approved→redeemed", approved, redeem, "", broker.RequestRedeemed},
		{"approved→approved refused", approved, approve, broker.ECONFLICT, broker.RequestApproved},
		{"approved→denied refused", approved, deny, broker.ECONFLICT, broker.RequestApproved},
		{"denied→approved refused", denied, approve, broker.ECONFLICT, broker.RequestDenied},
		{"denied→narrowed refused", denied, narrowReadOnly, broker.ECONFLICT, broker.RequestDenied},
		{"expired→approved refused", expired, approve, broker.EEXPIRED, broker.RequestExpired},
		{"expired→denied refused", expired, deny, broker.EEXPIRED, broker.RequestExpired},
		{"past deadline, not yet swept→approved refused", pastDeadline, approve, broker.EEXPIRED, broker.RequestPending},
		{"redeemed→approved refused", redeemed, approve, broker.ECONFLICT, broker.RequestRedeemed},
		{"redeemed→redeemed refused", redeemed, redeem, broker.ECONFLICT, broker.RequestRedeemed},
		{"pending→redeemed refused (pending)", pending, redeem, broker.ECONFLICT, broker.RequestPending},
		{"denied→redeemed refused", denied, redeem, broker.EFORBIDDEN, broker.RequestDenied},
		{"expired→redeemed refused", expired, redeem, broker.EEXPIRED, broker.RequestExpired},
		{"cancelled→approved refused", cancelled, approve, broker.ECONFLICT, broker.RequestCancelled},
		{"pending→approved while frozen refused", frozenPending, approve, broker.EFROZEN, broker.RequestPending},
		{"approved→redeemed while frozen refused", frozenApproved, redeem, broker.EFROZEN, broker.RequestApproved},
		{"approve by nobody refused", pending, func(h *harness, id string) error {
			_, err := h.svc.Approve(h.ctx, broker.Operator{}, id)
			return err
		}, broker.EUNAUTHORIZED, broker.RequestPending},
		{"deny without reason refused", pending, func(h *harness, id string) error {
			_, err := h.svc.Deny(h.ctx, op, id, "  ")
			return err
		}, broker.EINVALID, broker.RequestPending},
		{"narrow widening scopes refused", pending, func(h *harness, id string) error {
			r, _ := h.svc.Request(h.ctx, id)
			terms := r.Terms.Clone()
			terms.Scopes = append(terms.Scopes, "pulls:write")
			_, err := h.svc.Narrow(h.ctx, op, id, terms, "")
			return err
		}, broker.EINVALID, broker.RequestPending},
		{"narrow longer TTL refused", pending, func(h *harness, id string) error {
			r, _ := h.svc.Request(h.ctx, id)
			terms := r.Terms.Clone()
			terms.TTL *= 2
			_, err := h.svc.Narrow(h.ctx, op, id, terms, "")
			return err
		}, broker.EINVALID, broker.RequestPending},
		{"unknown request", func(*harness) string { return "nope" }, approve, broker.ENOTFOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id := tt.setup(h)
			err := tt.act(h, id)
			if tt.code == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.code != "" {
				wantCode(t, err, tt.code)
			}
			if tt.state == "" {
				return
			}
			r, err := h.svc.Request(h.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tt.state {
				t.Errorf("state %s, want %s", r.State, tt.state)
			}
		})
	}
}

func pending(h *harness) string { return h.submit("release-bot", "contents:read", "contents:write").ID }
func approved(h *harness) string {
	id := pending(h)
	h.approve(id)
	return id
}
func redeemed(h *harness) string {
	id := approved(h)
	h.redeem("release-bot", id)
	return id
}
func denied(h *harness) string {
	id := pending(h)
	if err := deny(h, id); err != nil {
		h.t.Fatal(err)
	}
	return id
}
func pastDeadline(h *harness) string {
	id := pending(h)
	h.clock.Advance(11 * time.Minute)
	return id
}
func expired(h *harness) string {
	id := pastDeadline(h)
	if n, err := h.svc.ExpireDue(h.ctx); err != nil || n < 1 {
		h.t.Fatalf("expire: %d, %v", n, err)
	}
	return id
}
func cancelled(h *harness) string {
	id := pending(h)
	if err := quarantine(h, id); err != nil {
		h.t.Fatal(err)
	}
	return id
}
func frozenPending(h *harness) string {
	id := pending(h)
	if err := h.svc.Freeze(h.ctx, op, "incident"); err != nil {
		h.t.Fatal(err)
	}
	return id
}
func frozenApproved(h *harness) string {
	id := approved(h)
	if err := h.svc.Freeze(h.ctx, op, "incident"); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func approve(h *harness, id string) error { _, err := h.svc.Approve(h.ctx, op, id); return err }
func deny(h *harness, id string) error {
	_, err := h.svc.Deny(h.ctx, op, id, "not part of the task")
	return err
}
func redeem(h *harness, id string) error {
	_, err := h.svc.Redeem(h.ctx, "release-bot", id, "")
	return err
}
func expire(h *harness, id string) error {
	h.clock.Advance(11 * time.Minute)
	_, err := h.svc.ExpireDue(h.ctx)
	return err
}
func quarantine(h *harness, _ string) error {
	_, err := h.svc.RevokeAgent(h.ctx, op, "release-bot", "compromised host", true)
	return err
}
func narrowReadOnly(h *harness, id string) error {
	r, err := h.svc.Request(h.ctx, id)
	if err != nil {
		return err
	}
	terms := r.Terms.Clone()
	terms.Scopes = []string{"contents:read"}
	terms.TTL = 5 * time.Minute
	_, err = h.svc.Narrow(h.ctx, op, id, terms, "read is enough")
	return err
}

// TestGrantTransitions walks every grant transition, legal and illegal.
func TestGrantTransitions(t *testing.T) {
	tests := []struct {
		name  string
		act   func(h *harness, g *broker.Grant, jti string) error
		code  string
		state broker.GrantState
	}{
		{"active→revoked", func(h *harness, g *broker.Grant, _ string) error {
			_, err := h.svc.Revoke(h.ctx, op, g.ID, "looks wrong")
			return err
		}, "", broker.GrantRevoked},
		{"active→completed", func(h *harness, _ *broker.Grant, jti string) error {
			return h.svc.Complete(h.ctx, "release-bot", jti)
		}, "", broker.GrantCompleted},
		{"active→expired", func(h *harness, _ *broker.Grant, _ string) error {
			h.clock.Advance(21 * time.Minute)
			_, err := h.svc.ExpireDue(h.ctx)
			return err
		}, "", broker.GrantExpired},
		{"revoked→revoked refused", func(h *harness, g *broker.Grant, _ string) error {
			if _, err := h.svc.Revoke(h.ctx, op, g.ID, "once"); err != nil {
				return err
			}
			_, err := h.svc.Revoke(h.ctx, op, g.ID, "twice")
			return err
		}, broker.ECONFLICT, broker.GrantRevoked},
		{"completed→revoked refused", func(h *harness, g *broker.Grant, jti string) error {
			if err := h.svc.Complete(h.ctx, "release-bot", jti); err != nil {
				return err
			}
			_, err := h.svc.Revoke(h.ctx, op, g.ID, "late")
			return err
		}, broker.ECONFLICT, broker.GrantCompleted},
		{"revoked→completed is a no-op", func(h *harness, g *broker.Grant, jti string) error {
			if _, err := h.svc.Revoke(h.ctx, op, g.ID, "x"); err != nil {
				return err
			}
			return h.svc.Complete(h.ctx, "release-bot", jti)
		}, "", broker.GrantRevoked},
		{"complete by another agent refused", func(h *harness, _ *broker.Grant, jti string) error {
			return h.svc.Complete(h.ctx, "support", jti)
		}, broker.EFORBIDDEN, broker.GrantActive},
		{"revoked by revoke-all, revoke refused", func(h *harness, g *broker.Grant, _ string) error {
			if _, err := h.svc.RevokeAll(h.ctx, op, "incident", false); err != nil {
				return err
			}
			_, err := h.svc.Revoke(h.ctx, op, g.ID, "again")
			return err
		}, broker.ECONFLICT, broker.GrantActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id := approved(h)
			tok := h.redeem("release-bot", id)
			err := tt.act(h, tok.Grant, tok.JTI)
			if tt.code == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.code != "" {
				wantCode(t, err, tt.code)
			}
			g, err := h.svc.Grant(h.ctx, tok.Grant.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g.State != tt.state {
				t.Errorf("state %s, want %s", g.State, tt.state)
			}
		})
	}
}

func TestIssuerTransitions(t *testing.T) {
	h := newHarness(t)
	if err := h.svc.Unfreeze(h.ctx, op, "x"); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Errorf("unfreeze live: %v", err)
	}
	if err := h.svc.Freeze(h.ctx, op, "incident"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Freeze(h.ctx, op, "again"); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Errorf("freeze frozen: %v", err)
	}
	if !h.svc.IssuerState().Frozen {
		t.Error("not frozen")
	}
	_, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"contents:read"}, Resource: gitURI})
	wantCode(t, err, broker.EFROZEN)
	if err := h.svc.Unfreeze(h.ctx, op, "all clear"); err != nil {
		t.Fatal(err)
	}
	h.approve(pending(h))
}

func TestTokenResponses(t *testing.T) {
	h := newHarness(t)
	id := pending(h)
	_, err := h.svc.Redeem(h.ctx, "release-bot", id, "")
	wantReason(t, err, broker.ReasonAuthorizationPending)
	_, err = h.svc.Redeem(h.ctx, "release-bot", id, "")
	wantReason(t, err, broker.ReasonSlowDown)
	h.clock.Advance(8 * time.Second) // interval 2 s grew to 7 s with slow_down
	_, err = h.svc.Redeem(h.ctx, "release-bot", id, "")
	wantReason(t, err, broker.ReasonAuthorizationPending)
	_, err = h.svc.Redeem(h.ctx, "support", id, "")
	wantReason(t, err, broker.ReasonInvalidGrant)

	d := denied(h)
	_, err = h.svc.Redeem(h.ctx, "release-bot", d, "")
	wantReason(t, err, broker.ReasonAccessDenied)
	if !strings.Contains(broker.ErrorMessage(err), "not part of the task") {
		t.Errorf("denial reason missing: %v", err)
	}
	e := expired(h)
	_, err = h.svc.Redeem(h.ctx, "release-bot", e, "")
	wantReason(t, err, broker.ReasonExpiredToken)

	a := approved(h)
	tok := h.redeem("release-bot", a)
	if tok.TokenType != "DPoP" || tok.Scope != "contents:read contents:write" {
		t.Errorf("token = %+v", tok)
	}
	_, err = h.svc.Redeem(h.ctx, "release-bot", a, "")
	wantReason(t, err, broker.ReasonInvalidGrant)
}

func TestSubmitRefusesBeyondCeiling(t *testing.T) {
	tests := []struct {
		name   string
		in     broker.SubmitInput
		reason string
	}{
		{"scope beyond ceiling", broker.SubmitInput{Scopes: []string{"secrets:read"}}, broker.ReasonInvalidScope},
		{"unknown scope", broker.SubmitInput{Scopes: []string{"admin"}}, broker.ReasonInvalidScope},
		{"no scope", broker.SubmitInput{Scopes: []string{"openid"}}, broker.ReasonInvalidScope},
		{"foreign resource", broker.SubmitInput{Resource: billingURI}, broker.ReasonInvalidTarget},
		{"unknown resource", broker.SubmitInput{Resource: "https://evil.example"}, broker.ReasonInvalidTarget},
		{"relative resource", broker.SubmitInput{Resource: "/git"}, broker.ReasonInvalidTarget},
		{"TTL beyond max", broker.SubmitInput{TTL: 2 * time.Hour}, broker.ReasonInvalidRequest},
		{"unknown approver", broker.SubmitInput{LoginHint: "ceo"}, broker.ReasonUnknownUserID},
		{"no intent", broker.SubmitInput{Intent: " "}, broker.ReasonInvalidBinding},
		{"unknown detail type", broker.SubmitInput{Details: []broker.AuthorizationDetail{{Type: "payment", Actions: []string{"contents:read"}}}}, broker.ReasonInvalidDetails},
		{"detail action beyond ceiling", broker.SubmitInput{Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Actions: []string{"secrets:read"}}}}, broker.ReasonInvalidDetails},
		{"detail location outside resource", broker.SubmitInput{Details: []broker.AuthorizationDetail{{Type: broker.TaskDetailType, Actions: []string{"contents:read"}, Locations: []string{"https://evil.example/x"}}}}, broker.ReasonInvalidDetails},
		{"bad parent", broker.SubmitInput{ParentID: "nope"}, broker.ReasonInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			in := broker.SubmitInput{LoginHint: "oncall", Intent: "do the task", Scopes: []string{"contents:read"}, Resource: gitURI}
			if tt.in.Scopes != nil {
				in.Scopes = tt.in.Scopes
			}
			if tt.in.Resource != "" {
				in.Resource = tt.in.Resource
			}
			if tt.in.LoginHint != "" {
				in.LoginHint = tt.in.LoginHint
			}
			if tt.in.Intent != "" {
				in.Intent = tt.in.Intent
			}
			in.TTL, in.Details, in.ParentID = tt.in.TTL, tt.in.Details, tt.in.ParentID
			_, err := h.svc.Submit(h.ctx, "release-bot", in)
			wantCode(t, err, broker.EINVALID)
			wantReason(t, err, tt.reason)
		})
	}
}

func TestRateLimitAndPendingCap(t *testing.T) {
	st := newHarness(t).st
	c := newClock()
	svc, err := broker.New(t.Context(), testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1, SubmitBurst: 3, MaxPendingPerAgent: 100})
	if err != nil {
		t.Fatal(err)
	}
	in := broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"contents:read"}, Resource: gitURI}
	for i := range 3 {
		if _, err := svc.Submit(t.Context(), "release-bot", in); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	_, err = svc.Submit(t.Context(), "release-bot", in)
	wantCode(t, err, broker.ETHROTTLED)
	if got := svc.Agents(); got[0].State.Throttled != 1 {
		t.Errorf("throttled count = %d, want 1", got[0].State.Throttled)
	}
	c.Advance(2 * time.Second)
	if _, err := svc.Submit(t.Context(), "release-bot", in); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestPendingCapPerAgent(t *testing.T) {
	st := newHarness(t).st
	c := newClock()
	svc, err := broker.New(t.Context(), testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 2})
	if err != nil {
		t.Fatal(err)
	}
	in := broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"contents:read"}, Resource: gitURI}
	first, err := svc.Submit(t.Context(), "release-bot", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(t.Context(), "release-bot", in); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Submit(t.Context(), "release-bot", in)
	wantCode(t, err, broker.ETHROTTLED)
	// Another agent is not held back by release-bot's queue.
	if _, err := svc.Submit(t.Context(), "support", broker.SubmitInput{LoginHint: "oncall", Intent: "x", Scopes: []string{"refunds:create"}, Resource: billingURI}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Deny(t.Context(), op, first.ID, "no"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(t.Context(), "release-bot", in); err != nil {
		t.Fatalf("after a decision freed a place: %v", err)
	}
	// A restart counts the queue from the store.
	svc2, err := broker.New(t.Context(), testConfig(), st, broker.Options{Issuer: "https://writ.example", Now: c.Now, SubmitRate: 1000, SubmitBurst: 1000, MaxPendingPerAgent: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc2.Submit(t.Context(), "release-bot", in)
	wantCode(t, err, broker.ETHROTTLED)
}

func TestAgentLastSeen(t *testing.T) {
	h := newHarness(t)
	events := h.svc.Subscribe(t.Context())
	pending(h)
	e := <-events
	if e.Agent == nil || !e.Agent.LastSeen.Equal(h.clock.Now()) {
		t.Fatalf("submission event carries agent state %+v", e.Agent)
	}
	// A state read from the store (a throttled submission) keeps LastSeen.
	for _, a := range h.svc.Agents() {
		if a.Agent.ID == "release-bot" && a.State.LastSeen.IsZero() {
			t.Error("Agents() does not show when release-bot was last seen")
		}
	}
}

// TestFollowOnNeedsALiveParent: a follow-on of a task that was never
// granted, or whose grant has ended, is refused, at submission and at
// decision, so it cannot outlive the revocation of its parent.
func TestFollowOnNeedsALiveParent(t *testing.T) {
	h := newHarness(t)
	followOn := func(parent string) (*broker.TaskRequest, error) {
		return h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "and then",
			Scopes: []string{"contents:read"}, Resource: gitURI, ParentID: parent})
	}
	_, err := followOn(pending(h))
	wantReason(t, err, broker.ReasonInvalidRequest)
	_, err = followOn(denied(h))
	wantReason(t, err, broker.ReasonInvalidRequest)

	parent := approved(h)
	tok := h.redeem("release-bot", parent)
	child, err := followOn(parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Complete(h.ctx, "release-bot", tok.JTI); err != nil {
		t.Fatal(err)
	}
	// Completing the parent cancelled the pending follow-on.
	if r, _ := h.svc.Request(h.ctx, child.ID); r.State != broker.RequestCancelled {
		t.Errorf("follow-on of a completed task is %s", r.State)
	}
	_, err = followOn(parent)
	wantReason(t, err, broker.ReasonInvalidRequest)
}

// TestOwnerCannotApproveOwnAgent: the agent's owner may not be the one
// who consents to its requests.
func TestOwnerCannotApproveOwnAgent(t *testing.T) {
	h := newHarness(t)
	owner := broker.Operator{Issuer: "https://idp.example", Subject: "plat", Email: "Platform-Team@example.com", EmailVerified: true}
	cfg := h.svc.Config()
	a, _ := cfg.Agent("release-bot")
	a.Owner = "platform-team@example.com"
	id := pending(h)
	_, err := h.svc.Approve(h.ctx, owner, id)
	wantCode(t, err, broker.EFORBIDDEN)
	h.approve(id) // another operator may
}
