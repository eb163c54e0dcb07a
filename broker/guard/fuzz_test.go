package guard_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/writhq/writ/broker/guard"
	"github.com/writhq/writ/broker/ssf/ssftest"
)

// FuzzCheck throws arbitrary Authorization and DPoP headers at a guard:
// it must refuse them with an *Error, never panic, never accept.
func FuzzCheck(f *testing.F) {
	h := ssftest.New(f, ssftest.Options{})
	tok := h.Mint(ssftest.Agent, "", "contents:read").AccessToken
	g := newGuard(f, h, "rs-fuzz", nil)
	f.Add("Bearer "+tok, "")
	f.Add("DPoP "+tok, "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("Bearer a.b.c", "")
	f.Add("bearer  "+tok[:40], "")
	f.Fuzz(func(t *testing.T, authz, proof string) {
		r := httptest.NewRequest("GET", "http://internal/x", nil)
		r.Header.Set("Authorization", authz)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		p, err := g.Check(context.Background(), r)
		if err == nil {
			// The guard has no feed, so it can accept nothing.
			t.Fatalf("accepted %+v", p)
		}
		if _, ok := err.(*guard.Error); !ok {
			t.Fatalf("error %T %v", err, err)
		}
		g.WriteError(httptest.NewRecorder(), err)
	})
}
