package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestIntrospectionOfAnotherAudienceWhileCached: once the token's own
// resource server has introspected it (signature, claims and grant
// cached), another resource server still learns nothing about it, however
// it authenticates, and its questions count as no use of the grant.
func TestIntrospectionOfAnotherAudienceWhileCached(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("contents:read")
	ownBearer := "Bearer " + e.clientToken(e.rs, "introspect").str("access_token")
	for range 2 {
		if r := e.introspect(tok); r.Status != 200 || r.Body["active"] != true {
			t.Fatalf("the token's own server: %d %s", r.Status, r.Raw)
		}
		if r := e.post("/introspect", url.Values{"token": {tok}}, "Authorization", ownBearer); r.Body["active"] != true {
			t.Fatalf("the token's own server with its client token: %d %s", r.Status, r.Raw)
		}
	}
	ctx := context.Background()
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := e.svc.Introspect(ctx, tok)
	if err != nil || !in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := e.svc.Grant(ctx, in.Grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	otherBearer := "Bearer " + e.clientToken(e.billing, "introspect").str("access_token")
	for _, r := range []*response{
		e.post("/introspect", e.authForm(e.billing, url.Values{"token": {tok}})),
		e.post("/introspect", url.Values{"token": {tok}}, "Authorization", otherBearer),
		e.post("/introspect", url.Values{"token": {tok}}, "Authorization", otherBearer),
	} {
		if r.Status != 200 || r.Raw != inactive {
			t.Errorf("another audience's server: %d %s", r.Status, r.Raw)
		}
	}
	if err := e.svc.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := e.svc.Grant(ctx, in.Grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Uses != before.Uses || after.RefusedAfterEnd != before.RefusedAfterEnd {
		t.Errorf("another audience's questions were counted: uses %d → %d", before.Uses, after.Uses)
	}
	if r := e.introspect(tok); !strings.Contains(r.Raw, `"active":true`) {
		t.Fatalf("the token's own server afterwards: %s", r.Raw)
	}
}

// TestIntrospectionAnswerFollowsTheGrant: the encoded answer about a token
// is reused only while its grant is unchanged; narrowed, the next answer
// shows the narrowed terms, and revoked, the token is inactive.
func TestIntrospectionAnswerFollowsTheGrant(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token("contents:read contents:write")
	var first *response
	for range 3 {
		r := e.introspect(tok)
		if r.str("scope") != "contents:read contents:write" {
			t.Fatalf("before narrowing: %s", r.Raw)
		}
		if first != nil && r.Raw != first.Raw {
			t.Fatalf("the same question answered differently:\n%s\n%s", first.Raw, r.Raw)
		}
		first = r
	}
	ctx := context.Background()
	in, err := e.svc.Introspect(ctx, tok)
	if err != nil || !in.Active {
		t.Fatalf("introspect: %+v %v", in, err)
	}
	terms := in.Grant.Terms.Clone()
	terms.Scopes = []string{"contents:read"}
	terms.TTL = 5 * time.Minute
	if _, err := e.svc.NarrowGrant(ctx, e.op, in.Grant.ID, terms, "read is enough"); err != nil {
		t.Fatal(err)
	}
	r := e.introspect(tok)
	if r.str("scope") != "contents:read" {
		t.Errorf("after narrowing: %s", r.Raw)
	}
	if exp, _ := r.Body["exp"].(float64); int64(exp) > e.clock.Now().Add(5*time.Minute).Unix() {
		t.Errorf("after narrowing, exp %v is past the narrowed TTL", r.Body["exp"])
	}
	if _, err := e.svc.Revoke(ctx, e.op, in.Grant.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	if r := e.introspect(tok); r.Raw != inactive {
		t.Errorf("after revocation: %s", r.Raw)
	}
}
