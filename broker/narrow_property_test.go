package broker_test

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/writhq/writ/broker"
)

var (
	allScopes = []string{"contents:read", "contents:write", "pulls:write"}
	allLocs   = []string{gitURI + "/acme/web", gitURI + "/acme/api", gitURI + "/acme/docs"}
)

func subsetOf(t *rapid.T, label string, from []string, min int) []string {
	return rapid.SliceOfNDistinct(rapid.SampledFrom(from), min, len(from), rapid.ID[string]).Draw(t, label)
}

// TestNarrowingNeverWidens draws random requests and random candidate
// narrowings; whatever the operator's editor sends, a grant is never wider
// than the request or than the agent's ceiling.
func TestNarrowingNeverWidens(t *testing.T) {
	h := newHarness(t)
	granted := 0
	refusals := map[string]int{}
	rapid.Check(t, func(rt *rapid.T) {
		scopes := subsetOf(rt, "scopes", allScopes, 1)
		var details []broker.AuthorizationDetail
		for i := range rapid.IntRange(0, 2).Draw(rt, "details") {
			details = append(details, broker.AuthorizationDetail{
				Type: broker.TaskDetailType, Actions: subsetOf(rt, "actions", scopes, 1),
				Locations: subsetOf(rt, "locations", allLocs, 0), Identifier: []string{"task-a", "task-b"}[i%2],
			})
		}
		ttl := time.Duration(rapid.IntRange(1, 60).Draw(rt, "ttl")) * time.Minute
		req, err := h.svc.Submit(h.ctx, "release-bot", broker.SubmitInput{LoginHint: "oncall", Intent: "task",
			Scopes: scopes, Details: details, Resource: gitURI, TTL: ttl})
		if err != nil {
			rt.Fatalf("submit: %v", err)
		}
		// A candidate is a random subset of what was asked, sometimes with
		// a random widening mixed in, as a buggy or hostile editor might send.
		widen := func(label string, v []string, extra []string) []string {
			if rapid.IntRange(0, 9).Draw(rt, label) == 0 {
				return append(v, rapid.SampledFrom(extra).Draw(rt, label+"-extra"))
			}
			return v
		}
		pick := func(label string, from []string) []string {
			if len(from) == 0 {
				return nil
			}
			return rapid.SliceOfNDistinct(rapid.SampledFrom(from), 0, len(from), rapid.ID[string]).Draw(rt, label)
		}
		cand := broker.Terms{
			Scopes:   widen("cand-scopes", pick("cand-scope-subset", scopes), []string{"secrets:read", "admin", "pulls:write", "contents:write"}),
			Resource: rapid.SampledFrom([]string{gitURI, gitURI, gitURI, gitURI, gitURI, gitURI + "/acme", gitURI + "/acme", "https://evil.example", billingURI}).Draw(rt, "cand-resource"),
			TTL:      ttl + time.Duration(rapid.IntRange(-int(ttl/time.Minute), 1).Draw(rt, "cand-ttl-delta"))*time.Minute,
		}
		for i, d := range details {
			if rapid.Bool().Draw(rt, "keep-detail") {
				nd := d.Clone()
				nd.Actions = widen("cand-actions", pick("cand-action-subset", d.Actions), []string{"secrets:read", "pulls:write"})
				nd.Locations = widen("cand-locs", pick("cand-loc-subset", d.Locations), allLocs)
				if rapid.IntRange(0, 9).Draw(rt, "retype") == 0 {
					nd.Type = "other"
				}
				if rapid.IntRange(0, 9).Draw(rt, "reid") == 0 {
					nd.Identifier = []string{"task-b", "task-a"}[i%2]
				}
				cand.Details = append(cand.Details, nd)
			}
		}
		g, err := h.svc.Narrow(h.ctx, op, req.ID, cand, "")
		if err != nil {
			refusals[broker.ErrorMessage(err)[:min(40, len(broker.ErrorMessage(err)))]]++
			if broker.ErrorCode(err) != broker.EINVALID && broker.ErrorCode(err) != broker.EFORBIDDEN {
				rt.Fatalf("narrow failed with %v", err)
			}
			return
		}
		granted++
		if why := g.Terms.NarrowerThan(req.Terms); why != "" {
			rt.Fatalf("grant wider than request: %s\nrequest %+v\ngrant %+v", why, req.Terms, g.Terms)
		}
		ceiling, _ := testConfig().Agents[0].CeilingFor(gitURI)
		for _, s := range g.Terms.ResourceScopes() {
			if !slices.Contains(ceiling, s) {
				rt.Fatalf("scope %s beyond ceiling", s)
			}
		}
		if !broker.ResourceWithin(g.Terms.Resource, req.Terms.Resource) || g.TTL() > req.Terms.TTL {
			rt.Fatalf("resource or TTL widened: %+v", g.Terms)
		}
		for _, d := range g.Terms.Details {
			if !slices.ContainsFunc(req.Terms.Details, d.Within) {
				rt.Fatalf("detail %+v is not within any requested detail %+v", d, req.Terms.Details)
			}
		}
	})
	if granted == 0 {
		t.Error("no candidate narrowing was ever granted: the property was never exercised")
	}
	t.Logf("%d narrowings granted; refusals: %v", granted, refusals)
}
