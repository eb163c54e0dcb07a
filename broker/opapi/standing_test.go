package opapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
	"github.com/writhq/writ/broker/opapi"
	"github.com/writhq/writ/broker/opapi/opapitest"
)

func TestParseStandingFor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30m", 30 * time.Minute, true},
		{" 1h30m ", 90 * time.Minute, true},
		{"8h", 8 * time.Hour, true},
		{"8h1s", 0, false}, // over the maximum
		{"", 0, false},
		{"0s", 0, false},
		{"-5m", 0, false},
		{"30", 0, false}, // no unit
		{"forever", 0, false},
	} {
		d, err := opapi.ParseStandingFor(tc.in, 8*time.Hour)
		if (err == nil) != tc.ok || d != tc.want {
			t.Errorf("ParseStandingFor(%q) = %s, %v; want %s ok=%v", tc.in, d, err, tc.want, tc.ok)
		}
		if err != nil && broker.ErrorCode(err) != broker.EINVALID {
			t.Errorf("ParseStandingFor(%q): %v is not invalid input", tc.in, err)
		}
	}
}

// FuzzParseStandingFor: a standing approval's duration from the network
// is accepted only when positive and within the maximum; anything else is
// EINVALID, never a panic.
func FuzzParseStandingFor(f *testing.F) {
	for _, s := range []string{"30m", "8h", "9h", "", "-1s", "1e9h", "9223372036854775807ns", "1.5h", "30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := opapi.ParseStandingFor(s, 8*time.Hour)
		switch {
		case err == nil && (d <= 0 || d > 8*time.Hour):
			t.Fatalf("%q accepted as %s", s, d)
		case err != nil && broker.ErrorCode(err) != broker.EINVALID:
			t.Fatalf("%q: %v", s, err)
		}
	})
}

// The standing endpoints: made from an approval under the calling
// operator, once per Idempotency-Key, listed, revoked; the operator token
// is required like everywhere else.
func TestStandingEndpoints(t *testing.T) {
	h := opapitest.Start(t, opapitest.Options{})
	ctx := context.Background()
	c := h.Client("dana", nil)

	if resp, err := http.Get(h.URL + "/v1/standing"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/standing without a token: %v %v", resp.Status, err)
	}
	req := h.Submit("nightly docs build")
	if _, err := c.CreateStanding(ctx, broker.Operator{}, req.ID, 30*time.Minute, "x"); broker.ErrorCode(err) != broker.ECONFLICT {
		t.Fatalf("standing from a pending request: %v, want conflict", err)
	}
	if _, err := c.Approve(ctx, broker.Operator{}, req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStanding(ctx, broker.Operator{}, req.ID, 9*time.Hour, "x"); broker.ErrorCode(err) != broker.EINVALID {
		t.Fatalf("over the maximum: %v, want invalid", err)
	}

	// The same key twice: one standing approval, the same answer.
	r := newRaw(t, h)
	tok := r.token(h.SignIn("dana", "").IDToken())
	post := func() (int, broker.StandingApproval) {
		path := "/v1/requests/" + req.ID + "/standing"
		hr, _ := http.NewRequest(http.MethodPost, h.URL+path, bytes.NewReader([]byte(`{"for":"30m","reason":"nightly"}`)))
		hr.Header.Set("Authorization", "DPoP "+tok)
		hr.Header.Set("DPoP", r.proof(http.MethodPost, path, tok))
		hr.Header.Set(opapi.IdempotencyHeader, "standing-key-1")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sa broker.StandingApproval
		_ = json.NewDecoder(resp.Body).Decode(&sa)
		return resp.StatusCode, sa
	}
	s1, a1 := post()
	s2, a2 := post()
	if s1 != 200 || s2 != 200 || a1.ID == "" || a1.ID != a2.ID {
		t.Fatalf("idempotent create: %d %q, %d %q", s1, a1.ID, s2, a2.ID)
	}
	st, err := c.Standing(ctx)
	if err != nil || len(st.Standing) != 1 || st.MaxStanding != broker.DefaultMaxStanding {
		t.Fatalf("GET /v1/standing: %+v %v", st, err)
	}
	if sa := st.Standing[0]; sa.CreatedBy.Subject != "u-dana" || sa.Reason != "nightly" || sa.FromRequest != req.ID {
		t.Fatalf("made under the wrong operator or terms: %+v", sa)
	}
	if covered := h.Submit("nightly docs build, again"); covered.State != broker.RequestApproved {
		t.Fatalf("covered request: %s", covered.State)
	}
	sa, err := c.RevokeStanding(ctx, broker.Operator{}, a1.ID, "done")
	if err != nil || sa.RevokedBy == nil || sa.RevokedBy.Subject != "u-dana" || len(sa.Uses) != 1 {
		t.Fatalf("revoke: %+v %v", sa, err)
	}
	if after := h.Submit("nightly docs build, after"); after.State != broker.RequestPending {
		t.Fatalf("after revoke: %s", after.State)
	}
	es, err := c.Audit(ctx, broker.AuditFilter{Kinds: []broker.AuditKind{broker.AuditStandingCreated, broker.AuditStandingRevoked}})
	if err != nil || len(es) != 2 {
		t.Fatalf("audit: %d entries, %v; want created and revoked once each", len(es), err)
	}
}
