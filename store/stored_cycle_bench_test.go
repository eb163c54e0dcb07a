package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// BenchmarkStoreCycle is the store's share of one full cycle, without
// fsync: a request submitted, read and approved, its grant written, read
// and redeemed, and an audit entry for each step. It runs on main's store
// as well, for a before-and-after of the record formats.
func BenchmarkStoreCycle(b *testing.B) {
	s := MustOpen(b)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		created := t0.Add(time.Duration(n) * time.Millisecond)
		rid, gid := fmt.Sprintf("r%016x", n), fmt.Sprintf("g%016x", n)
		err := s.Update(b.Context(), func(tx broker.Tx) error {
			if err := tx.PutRequest(sampleRequest(rid, created)); err != nil {
				return err
			}
			return tx.AppendAudit(&broker.AuditEntry{At: created, Kind: broker.AuditRequestSubmitted, Actor: "agent:a", RequestID: rid})
		})
		if err == nil {
			err = s.Update(b.Context(), func(tx broker.Tx) error {
				r, err := tx.Request(rid)
				if err != nil {
					return err
				}
				r.State, r.GrantID = broker.RequestApproved, gid
				if err := tx.PutRequest(r); err != nil {
					return err
				}
				if err := tx.PutGrant(sampleGrant(gid, "agent-7", broker.GrantActive, created)); err != nil {
					return err
				}
				return tx.AppendAudit(&broker.AuditEntry{At: created, Kind: broker.AuditDecision, Actor: "operator:x", RequestID: rid, GrantID: gid})
			})
		}
		if err == nil {
			err = s.Update(b.Context(), func(tx broker.Tx) error {
				r, err := tx.Request(rid)
				if err != nil {
					return err
				}
				g, err := tx.Grant(r.GrantID)
				if err != nil {
					return err
				}
				r.State, g.TokenJTI = broker.RequestRedeemed, "jti-"+gid
				if err := tx.PutRequest(r); err != nil {
					return err
				}
				if err := tx.PutGrant(g); err != nil {
					return err
				}
				if err := tx.PutToken(&broker.Token{JTI: g.TokenJTI, GrantID: gid, AgentID: g.AgentID, IssuedAt: created, ExpiresAt: g.ExpiresAt}); err != nil {
					return err
				}
				return tx.AppendAudit(&broker.AuditEntry{At: created, Kind: broker.AuditTokenIssued, Actor: "agent:a", GrantID: gid, JTI: g.TokenJTI})
			})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
