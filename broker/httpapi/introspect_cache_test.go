package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
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
