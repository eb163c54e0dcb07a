package broker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/writhq/writ/broker"
)

// TestMintedAuthorityWithinConsent draws random requests, decisions
// (approve or a random narrowing), and chains of follow-ons, and checks
// every minted token: its authority (scope and details) is within what the
// decision recorded and within the agent's ceiling, every detail action is
// a scope, and a follow-on's exp is never after its parent's.
func TestMintedAuthorityWithinConsent(t *testing.T) {
	ceiling, _ := testConfig().Agents[0].CeilingFor(gitURI)
	minted := 0
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(t)
		type link struct {
			reqID string
			exp   int64
		}
		var parent *link
		for depth := range rapid.IntRange(1, 4).Draw(rt, "chain") {
			scopes := subsetOf(rt, "scopes", allScopes, 1)
			var details []broker.AuthorizationDetail
			for range rapid.IntRange(0, 2).Draw(rt, "details") {
				details = append(details, detail(subsetOf(rt, "locations", allLocs, 0), subsetOf(rt, "actions", scopes, 1)...))
			}
			in := broker.SubmitInput{LoginHint: "oncall", Intent: "task", Scopes: scopes, Details: details, Resource: gitURI,
				TTL: time.Duration(rapid.IntRange(1, 60).Draw(rt, "ttl")) * time.Minute}
			if parent != nil {
				in.ParentID = parent.reqID
			}
			req, err := h.svc.Submit(h.ctx, "release-bot", in)
			if err != nil {
				if parent != nil && broker.ErrorCode(err) == broker.EINVALID {
					return // the parent ran out meanwhile: refused, as it must be
				}
				rt.Fatalf("submit at depth %d: %v", depth, err)
			}
			var g *broker.Grant
			if rapid.Bool().Draw(rt, "narrow") {
				keep := subsetOf(rt, "keep-scopes", scopes, 1)
				cand := broker.Terms{Scopes: keep, Details: req.Terms.Details, Resource: gitURI,
					TTL: time.Duration(rapid.IntRange(1, int(req.Terms.TTL/time.Minute)+1).Draw(rt, "cand-ttl")) * time.Minute}
				g, err = h.svc.Narrow(h.ctx, op, req.ID, cand, "")
			} else {
				g, err = h.svc.Approve(h.ctx, op, req.ID)
			}
			if err != nil {
				if broker.ErrorCode(err) == broker.EINVALID {
					return // a narrowing the rules refuse
				}
				rt.Fatalf("decide: %v", err)
			}
			tok, err := h.svc.Redeem(h.ctx, "release-bot", req.ID, "jkt")
			if err != nil {
				rt.Fatalf("redeem: %v", err)
			}
			claims, err := h.svc.VerifyAccessToken(tok.AccessToken)
			if err != nil {
				rt.Fatal(err)
			}
			minted++
			dec, err := h.svc.Decision(h.ctx, g.DecisionID)
			if err != nil {
				rt.Fatal(err)
			}
			got := broker.Terms{Scopes: strings.Fields(claims.Scope), Details: claims.Details, Resource: claims.Audience, TTL: dec.Granted.TTL}
			if why := got.NarrowerThan(*dec.Granted); why != "" {
				rt.Fatalf("token beyond its decision: %s\ntoken %+v\ndecision %+v", why, got, dec.Granted)
			}
			if why := got.DetailActionsOutsideScopes(); why != "" {
				rt.Fatalf("token details beyond its scopes: %s", why)
			}
			for _, a := range got.Actions() {
				if !slices.Contains(ceiling, a) {
					rt.Fatalf("token action %s beyond the ceiling", a)
				}
			}
			if claims.Expiry > g.ExpiresAt.Unix() {
				rt.Fatalf("token exp %d after its grant's %s", claims.Expiry, g.ExpiresAt)
			}
			if parent != nil && claims.Expiry > parent.exp {
				rt.Fatalf("follow-on token exp %d after its parent's %d", claims.Expiry, parent.exp)
			}
			parent = &link{reqID: req.ID, exp: claims.Expiry}
			h.clock.Advance(time.Duration(rapid.IntRange(0, 20).Draw(rt, "wait")) * time.Minute)
		}
	})
	if minted == 0 {
		t.Error("no token was ever minted: the property was never exercised")
	}
}
