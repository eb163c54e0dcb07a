package broker_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/wire"
)

// The tests in this file are the reproductions of issue 9: each failed on
// the code before authority became one value judged in one place.

var webLoc = gitURI + "/repos/acme/web"

func detail(locs []string, actions ...string) broker.AuthorizationDetail {
	return broker.AuthorizationDetail{Type: broker.TaskDetailType, Locations: locs, Actions: actions}
}

// Reproduction 1: a detail action the scopes do not name is refused at
// submission, counts towards risk, and the guard's rule needs the scope.
func TestDetailActionBeyondScopesRefused(t *testing.T) {
	h := newHarness(t)
	_, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "read docs",
		Scopes: []string{"contents:read"}, Resource: gitURI,
		Details: []broker.AuthorizationDetail{detail([]string{webLoc}, "contents:write")}})
	wantCode(t, err, broker.EINVALID)
	wantReason(t, err, broker.ReasonInvalidDetails)
	if !strings.Contains(broker.ErrorMessage(err), "contents:write") {
		t.Errorf("refusal does not name the action: %v", err)
	}

	res, _ := testConfig().Resource(gitURI)
	terms := broker.Terms{Scopes: []string{"contents:read"}, Details: []broker.AuthorizationDetail{detail(nil, "contents:write")}}
	if got := res.RiskOf(terms); got != broker.RiskHigh {
		t.Errorf("risk of read scope with a write detail = %s, want high", got)
	}
	if wire.AllowsAt([]string{"contents:read"}, terms.Details, webLoc, "contents:write") {
		t.Error("a detail action without its scope is allowed")
	}
}

func TestAllowsAt(t *testing.T) {
	details := []broker.AuthorizationDetail{detail([]string{webLoc}, "contents:write")}
	scopes := []string{"contents:read", "contents:write"}
	for _, c := range []struct {
		loc, action string
		want        bool
	}{
		{webLoc + "/blob/main", "contents:write", true},
		{gitURI + "/repos/acme/api", "contents:write", false},      // the detail limits write to web
		{gitURI + "/repos/acme/api", "contents:read", true},        // no detail names read: the whole resource
		{webLoc, "pulls:write", false},                             // no scope
		{webLoc + "/../api", "contents:write", false},              // dot segments climb nowhere
		{gitURI + "/repos/acme/webhooks", "contents:write", false}, // a prefix is not a path beneath
	} {
		if got := wire.AllowsAt(scopes, details, c.loc, c.action); got != c.want {
			t.Errorf("AllowsAt(%s, %s) = %v, want %v", c.loc, c.action, got, c.want)
		}
	}
}

// Reproduction 2: narrowing away a scope drops it from every detail, in
// the grant, the decision, the token and the audit log alike.
func TestNarrowingDropsScopeFromDetails(t *testing.T) {
	h := newHarness(t)
	asked := []broker.AuthorizationDetail{detail([]string{webLoc}, "contents:read", "pulls:write")}
	req, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "open a PR",
		Scopes: []string{"contents:read", "pulls:write"}, Details: asked, Resource: gitURI, TTL: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// What the console sends: the scope unticked, the details as asked.
	g, err := h.svc.Narrow(h.ctx, op, req.ID, broker.Terms{Scopes: []string{"contents:read"}, Details: asked,
		Resource: gitURI, TTL: 10 * time.Minute}, "no PRs")
	if err != nil {
		t.Fatal(err)
	}
	tok := h.redeem("release-bot", req.ID)
	claims, err := h.svc.VerifyAccessToken(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := h.svc.Decision(h.ctx, g.DecisionID)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := h.svc.Audit(h.ctx, broker.AuditFilter{Kinds: []broker.AuditKind{broker.AuditDecision}})
	if err != nil || len(entries) != 1 {
		t.Fatalf("decision audit entries: %d, %v", len(entries), err)
	}
	var data struct {
		Granted broker.Terms `json:"granted"`
	}
	if err := json.Unmarshal(entries[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	for name, actions := range map[string][]string{
		"grant":    g.Terms.Actions(),
		"decision": dec.Granted.Actions(),
		"token":    (broker.Terms{Scopes: strings.Fields(claims.Scope), Details: claims.Details}).Actions(),
		"audit":    data.Granted.Actions(),
	} {
		if !slices.Equal(actions, []string{"contents:read"}) {
			t.Errorf("%s carries %v, want only contents:read", name, actions)
		}
	}
}

// Reproduction 3: a chain of follow-ons never outlives its parent, and the
// parent's expiry ends the whole tree, each end on the feed and in the log.
func TestFollowOnChainEndsWithParent(t *testing.T) {
	h := newHarness(t)
	parentReq, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
		Scopes: []string{"contents:read"}, Resource: gitURI, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	parent := h.approve(parentReq.ID)
	chain := []*broker.Grant{parent}
	prevReq := parentReq.ID
	for i := range 4 {
		h.clock.Advance(10 * time.Second)
		r, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "follow-on",
			Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 30 * time.Minute, ParentID: prevReq})
		if err != nil {
			t.Fatalf("follow-on %d: %v", i, err)
		}
		g := h.approve(r.ID)
		if g.ExpiresAt.After(chain[len(chain)-1].ExpiresAt) {
			t.Fatalf("follow-on %d ends %s, after its parent %s", i, g.ExpiresAt, chain[len(chain)-1].ExpiresAt)
		}
		if g.ExpiresAt.After(parent.ExpiresAt) {
			t.Fatalf("follow-on %d outlives the root", i)
		}
		chain = append(chain, g)
		prevReq = r.ID
	}
	seq := h.svc.LastSignalSeq()
	h.clock.Advance(time.Minute)
	if _, err := h.svc.ExpireDue(h.ctx); err != nil {
		t.Fatal(err)
	}
	for i, g := range chain {
		got, err := h.svc.Grant(h.ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == broker.GrantActive {
			t.Errorf("grant %d of the chain still active after its root expired", i)
		}
		if st := h.svc.StatusOf(got); st.Live() {
			t.Errorf("grant %d still live", i)
		}
	}
	sigs, err := h.svc.Signals(h.ctx, seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, g := range chain[1:] {
		// A follow-on due at the same moment may expire by its own exp
		// (its token says so itself); one ended by its parent must reach
		// resource servers through the feed.
		got, _ := h.svc.Grant(h.ctx, g.ID)
		switch got.EndKind {
		case broker.EndExpired:
			if got.ExpiresAt.After(parent.ExpiresAt) {
				t.Errorf("follow-on %s expired after its root", g.ID)
			}
		case broker.EndRevokedParent:
			ended++
			if !slices.ContainsFunc(sigs, func(s broker.Signal) bool { return s.GrantID == g.ID }) {
				t.Errorf("the end of follow-on %s is not on the feed", g.ID)
			}
		default:
			t.Errorf("follow-on %s ended by %s", g.ID, got.EndKind)
		}
	}
	if ended == 0 {
		t.Error("no follow-on was ended by its parent: the tree rule was never exercised")
	}
	for _, g := range chain {
		es, err := h.svc.Audit(h.ctx, broker.AuditFilter{GrantID: g.ID, Kinds: []broker.AuditKind{broker.AuditGrantExpired, broker.AuditGrantRevoked}})
		if err != nil || len(es) != 1 {
			t.Errorf("grant %s: %d end entries in the audit log, want 1 (%v)", g.ID, len(es), err)
		}
	}
}

// A follow-on asked for with more time than its parent has left is cut to
// end with the parent before policy sees it, and the trace says so.
func TestFollowOnTTLCutAtSubmission(t *testing.T) {
	h := newHarness(t)
	p := h.submit("release-bot", "contents:read")
	h.approve(p.ID) // 20 minutes
	h.clock.Advance(15 * time.Minute)
	r, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "more",
		Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 30 * time.Minute, ParentID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Terms.TTL != 5*time.Minute {
		t.Errorf("follow-on TTL %s, want the 5m its parent has left", r.Terms.TTL)
	}
	if !slices.ContainsFunc(r.Policy.Trace, func(l string) bool { return strings.Contains(l, "its parent grant has left") }) {
		t.Errorf("trace does not say the TTL was cut: %v", r.Policy.Trace)
	}
}

// Reproduction 4: resources are exact; a narrowing cannot move the
// audience, and the configuration refuses nested resources (broker/config).
func TestNarrowingCannotMoveResource(t *testing.T) {
	h := newHarness(t)
	req, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
		Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 10 * time.Minute,
		Details: []broker.AuthorizationDetail{detail([]string{webLoc}, "contents:read")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.Narrow(h.ctx, op, req.ID, broker.Terms{Scopes: []string{"contents:read"}, Resource: webLoc,
		TTL: 10 * time.Minute, Details: req.Terms.Details}, "")
	wantCode(t, err, broker.EINVALID)
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"http://h:1", "http://h:1/vault", true}, {"http://h:1/vault", "http://h:1", true}, {"http://h:1/", "http://h:1/vault", true},
		{"http://H:1", "http://h:1", true}, {"http://h:1/vault", "http://h:1/vaults", false}, {"http://h:1", "http://h:2", false},
	} {
		if got := broker.ResourcesOverlap(c.a, c.b); got != c.want {
			t.Errorf("ResourcesOverlap(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	// A detail location cannot widen an action either: narrowing away the
	// last detail that limits an action is refused.
	_, err = h.svc.Narrow(h.ctx, op, req.ID, broker.Terms{Scopes: []string{"contents:read"}, Resource: gitURI, TTL: 10 * time.Minute}, "")
	wantCode(t, err, broker.EINVALID)
}

// Reproduction 5: the owner rule fails closed.
func TestOwnerRuleFailsClosed(t *testing.T) {
	byEmail := "platform@example.com"
	bySub := "https://idp.example|plat"
	for _, c := range []struct {
		name    string
		owner   string
		op      broker.Operator
		owns    bool
		unknown bool
	}{
		{"no owner", "", broker.Operator{Issuer: "i", Subject: "s"}, false, false},
		{"verified owner", byEmail, broker.Operator{Issuer: "i", Subject: "s", Email: "Platform@example.com", EmailVerified: true}, true, false},
		{"verified other", byEmail, broker.Operator{Issuer: "i", Subject: "s", Email: "dana@example.com", EmailVerified: true}, false, false},
		{"no email", byEmail, broker.Operator{Issuer: "i", Subject: "s"}, false, true},
		{"unverified email", byEmail, broker.Operator{Issuer: "i", Subject: "s", Email: byEmail}, false, true},
		{"owner by subject", bySub, broker.Operator{Issuer: "https://idp.example", Subject: "plat"}, true, false},
		{"other subject", bySub, broker.Operator{Issuer: "https://idp.example", Subject: "dana"}, false, false},
		{"same subject, other issuer", bySub, broker.Operator{Issuer: "https://evil.example", Subject: "plat"}, false, false},
		{"policy rule", byEmail, broker.PolicyOperator("docs"), false, false},
	} {
		owns, unknown := broker.OwnerMatch(c.owner, c.op)
		if owns != c.owns || (unknown != "") != c.unknown {
			t.Errorf("%s: owns %v unknown %q, want %v %v", c.name, owns, unknown, c.owns, c.unknown)
		}
	}

	cfg := testConfig()
	cfg.Agents[0].Owner = byEmail
	h := newHarnessWith(t, cfg)
	req := h.submit("release-bot", "contents:read")
	_, err := h.svc.Approve(h.ctx, broker.Operator{Issuer: "https://idp.example", Subject: "nomail"}, req.ID)
	wantCode(t, err, broker.EFORBIDDEN)
	if msg := broker.ErrorMessage(err); !strings.Contains(msg, "cannot tell") || !strings.Contains(msg, "Another operator") {
		t.Errorf("refusal does not say why and who else can approve: %s", msg)
	}
	if _, err := h.svc.Approve(h.ctx, op, req.ID); err != nil {
		t.Errorf("a verified non-owner cannot approve: %v", err)
	}
}

// Reproduction 6: a grant ended by an epoch stays revoked, whatever the
// agent does after, and its record says so.
func TestEpochRevokedGrantStaysRevoked(t *testing.T) {
	h := newHarness(t)
	req := h.submit("release-bot", "contents:read")
	h.approve(req.ID)
	tok := h.redeem("release-bot", req.ID)
	if _, err := h.svc.RevokeAgent(h.ctx, op, "release-bot", "host compromised", false); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Complete(h.ctx, "release-bot", tok.JTI); err != nil {
		t.Fatalf("the agent's /revoke after the revocation: %v, want success (RFC 7009)", err)
	}
	g, err := h.svc.Grant(h.ctx, tok.Grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := h.svc.StatusOf(g)
	if st.State != broker.GrantRevoked || st.Cause.Kind != broker.EndRevokedAgent || st.Cause.Reason != "host compromised" ||
		st.Cause.Actor.ID() != op.ID() {
		t.Fatalf("status after complete: %+v %+v", st, st.Cause)
	}
	// When its expiry comes, the record is written as the revocation it was.
	h.clock.Advance(time.Hour)
	if _, err := h.svc.ExpireDue(h.ctx); err != nil {
		t.Fatal(err)
	}
	g, _ = h.svc.Grant(h.ctx, tok.Grant.ID)
	if g.State != broker.GrantRevoked || g.EndKind != broker.EndRevokedAgent {
		t.Errorf("record after expiry: state %s, cause %s; want revoked by the agent revocation", g.State, g.EndKind)
	}
	done, err := h.svc.Audit(h.ctx, broker.AuditFilter{GrantID: g.ID, Kinds: []broker.AuditKind{broker.AuditGrantCompleted, broker.AuditGrantExpired}})
	if err != nil || len(done) != 0 {
		t.Errorf("audit records the grant as completed or expired: %v %v", done, err)
	}
}

// StatusOf picks the earliest cause and names who moved the epoch.
func TestStatusOfEarliestCause(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	dana := broker.Operator{Issuer: "i", Subject: "dana"}
	g := &broker.Grant{State: broker.GrantActive, ExpiresAt: t0.Add(time.Hour), Epoch: 1, AgentEpoch: 0}
	issuer := broker.IssuerState{Epoch: 3, Epochs: []broker.EpochMark{{Epoch: 2, At: t0.Add(20 * time.Minute), By: dana, Reason: "first"},
		{Epoch: 3, At: t0.Add(40 * time.Minute), Reason: "second"}}}
	agent := broker.AgentState{Epoch: 1, Epochs: []broker.EpochMark{{Epoch: 1, At: t0.Add(30 * time.Minute)}}}
	st := broker.StatusOf(g, issuer, agent, t0.Add(2*time.Hour))
	if st.Cause == nil || st.Cause.Kind != broker.EndRevokedAll || !st.Cause.At.Equal(t0.Add(20*time.Minute)) || st.Cause.Actor != dana {
		t.Fatalf("cause %+v, want revoke-all by dana at 09:20", st.Cause)
	}
	if st := broker.StatusOf(g, broker.IssuerState{Epoch: 1}, broker.AgentState{}, t0.Add(30*time.Minute)); !st.Live() {
		t.Errorf("live grant: %+v", st)
	}
	if st := broker.StatusOf(g, broker.IssuerState{Epoch: 1}, broker.AgentState{}, t0.Add(time.Hour)); st.State != broker.GrantExpired {
		t.Errorf("at its expiry: %+v", st)
	}
}
