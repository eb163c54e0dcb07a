package broker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// TestUseRecordsSayWhereAndWhen: a grant.used entry carries the window of
// the uses it counts, the resource server that reported them, the
// endpoints and the refusal reasons; uses reported in a window that
// crosses the revocation are never counted as after it; and a resource
// server may not report another resource's grant.
func TestUseRecordsSayWhereAndWhen(t *testing.T) {
	h := newHarness(t)
	req := h.submit("release-bot", "contents:read")
	h.approve(req.ID)
	tok := h.redeem("release-bot", req.ID)
	t0 := h.clock.Now()
	h.clock.Advance(time.Minute)
	if _, err := h.svc.Revoke(h.ctx, op, tok.Grant.ID, "done with it"); err != nil {
		t.Fatal(err)
	}
	revokedAt := h.clock.Now()
	h.clock.Advance(time.Minute)

	err := h.svc.ReportUses(h.ctx, broker.UseReport{Resource: billingURI, GrantID: tok.Grant.ID, Accepted: 1})
	wantCode(t, err, broker.EFORBIDDEN)

	// Accepted from before to after the revocation: all counted as before.
	if err := h.svc.ReportUses(h.ctx, broker.UseReport{Resource: gitURI, GrantID: tok.Grant.ID,
		Accepted: 3, FirstAccepted: t0.Add(10 * time.Second), LastAccepted: revokedAt.Add(time.Second),
		Refused: 2, FirstRefused: revokedAt.Add(5 * time.Second), LastRefused: revokedAt.Add(30 * time.Second),
		Endpoints: []string{"GET /repos/acme/web"}, Reasons: map[string]int64{"revoked": 2}}); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.FlushUsage(h.ctx); err != nil {
		t.Fatal(err)
	}
	g, _ := h.svc.Grant(h.ctx, tok.Grant.ID)
	if g.Uses != 3 || g.AcceptedAfterEnd != 0 || g.RefusedAfterEnd != 2 {
		t.Errorf("uses %d, accepted after end %d, refused after end %d; want 3, 0, 2", g.Uses, g.AcceptedAfterEnd, g.RefusedAfterEnd)
	}
	es, err := h.svc.Audit(h.ctx, broker.AuditFilter{GrantID: g.ID, Kinds: []broker.AuditKind{broker.AuditGrantUsed}})
	if err != nil || len(es) != 1 {
		t.Fatalf("grant.used entries: %d %v", len(es), err)
	}
	var rec struct {
		From, To       time.Time
		ReportedBy     []string         `json:"reported_by"`
		Endpoints      []string         `json:"endpoints"`
		RefusedReasons map[string]int64 `json:"refused_reasons"`
		Straddling     int64            `json:"straddling_end"`
	}
	if err := json.Unmarshal(es[0].Data, &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.From.Equal(t0.Add(10*time.Second)) || !rec.To.Equal(revokedAt.Add(30*time.Second)) ||
		len(rec.ReportedBy) != 1 || rec.ReportedBy[0] != gitURI || len(rec.Endpoints) != 1 ||
		rec.RefusedReasons["revoked"] != 2 || rec.Straddling != 3 {
		t.Errorf("grant.used record: %s", es[0].Data)
	}
}
