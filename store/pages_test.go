package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/writhq/writ/broker"
)

// bucketPages reads a bbolt file between commits and returns, for each
// top-level bucket, the ids of the pages its tree occupies. It knows
// bbolt's page layout (a 16-byte page header; 16-byte branch and leaf
// elements; a bucket value is its root page id and sequence), enough to
// see which pages a commit rewrote: bbolt writes every page a transaction
// dirties to a newly allocated id.
func bucketPages(tb testing.TB, path string) map[string]map[uint64]bool {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	le := binary.LittleEndian
	pageSize := uint64(le.Uint32(data[16+8:]))
	meta := func(i uint64) []byte { return data[i*pageSize+16:] }
	m := meta(0)
	if le.Uint64(meta(1)[56:]) > le.Uint64(m[56:]) { // txid
		m = meta(1)
	}
	var walk func(id uint64, seen map[uint64]bool, visit func(k, v []byte, leafFlags uint32))
	walk = func(id uint64, seen map[uint64]bool, visit func(k, v []byte, leafFlags uint32)) {
		p := data[id*pageSize:]
		flags, count, overflow := le.Uint16(p[8:]), int(le.Uint16(p[10:])), uint64(le.Uint32(p[12:]))
		for i := uint64(0); i <= overflow; i++ {
			seen[id+i] = true
		}
		for i := range count {
			e := p[16+16*i:]
			switch {
			case flags&0x01 != 0: // branch
				walk(le.Uint64(e[8:]), seen, visit)
			case flags&0x02 != 0 && visit != nil: // leaf
				pos, ks, vs := le.Uint32(e[4:]), le.Uint32(e[8:]), le.Uint32(e[12:])
				k := e[pos : pos+ks]
				visit(k, e[pos+ks:pos+ks+vs], le.Uint32(e))
			}
		}
	}
	out := map[string]map[uint64]bool{}
	walk(le.Uint64(m[16:]), map[uint64]bool{}, func(k, v []byte, leafFlags uint32) {
		if leafFlags&0x01 == 0 { // not a bucket
			return
		}
		pages := map[uint64]bool{}
		if root := le.Uint64(v); root != 0 {
			walk(root, pages, nil)
		}
		out[string(k)] = pages
	})
	return out
}

// TestPagesPerCycle measures, for the writes of a full cycle as the broker
// makes them (a policy-approved submission: request, decision, grant, two
// audit entries; a redemption: token, grant, request, an audit entry), how
// many pages of each bucket one group commit of 32 cycles rewrites, on a
// store already holding 5,000 cycles, with random ids (as before issue 12)
// and with ids that lead with the time. It fails if time-ordered ids stop
// saving most of the pages of the buckets keyed by id.
func TestPagesPerCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 5,000 cycles")
	}
	per := map[string]map[string]float64{}
	for _, timed := range []bool{false, true} {
		s := MustOpen(t)
		rng := rand.New(rand.NewPCG(1, 2))
		clock := t0
		newID := func(prefix string) string {
			b := make([]byte, 8)
			binary.BigEndian.PutUint64(b, rng.Uint64())
			if timed {
				return prefix + fmt.Sprintf("%012x", clock.UnixMilli()) + hex.EncodeToString(b)
			}
			return prefix + hex.EncodeToString(b)
		}
		type cycle struct {
			req   *broker.TaskRequest
			grant *broker.Grant
		}
		submit := func(tx broker.Tx) cycle {
			clock = clock.Add(300 * time.Microsecond)
			terms := broker.Terms{Scopes: []string{"contents:read"}, Resource: "https://git.example", TTL: 10 * time.Minute}
			r := &broker.TaskRequest{ID: newID(""), AgentID: "load-0001", LoginHint: "oncall", Intent: "read the repository for the nightly report",
				Terms: terms, State: broker.RequestApproved, CreatedAt: clock, Deadline: clock.Add(10 * time.Minute), ClosedAt: clock}
			d := &broker.Decision{ID: newID("dec-"), RequestID: r.ID, Kind: broker.DecisionApprove, At: clock, Requested: terms, Granted: &terms}
			g := &broker.Grant{ID: newID("grant-"), RequestID: r.ID, DecisionID: d.ID, AgentID: r.AgentID, Intent: r.Intent, Terms: terms,
				State: broker.GrantActive, CreatedAt: clock, ExpiresAt: clock.Add(terms.TTL)}
			r.DecisionID, r.GrantID = d.ID, g.ID
			for _, err := range []error{tx.PutRequest(r), tx.PutDecision(d), tx.PutGrant(g),
				tx.AppendAudit(&broker.AuditEntry{At: clock, Kind: broker.AuditRequestSubmitted, RequestID: r.ID, Message: r.Intent}),
				tx.AppendAudit(&broker.AuditEntry{At: clock, Kind: broker.AuditDecision, RequestID: r.ID, GrantID: g.ID, Message: "approved as asked"})} {
				if err != nil {
					t.Fatal(err)
				}
			}
			return cycle{r, g}
		}
		redeem := func(tx broker.Tx, c cycle) {
			tok := &broker.Token{JTI: newID(""), GrantID: c.grant.ID, AgentID: c.grant.AgentID, IssuedAt: clock, ExpiresAt: c.grant.ExpiresAt, JKT: "jkt"}
			c.req.State, c.grant.TokenJTI, c.grant.JKT = broker.RequestRedeemed, tok.JTI, "jkt"
			for _, err := range []error{tx.PutToken(tok), tx.PutGrant(c.grant), tx.PutRequest(c.req),
				tx.AppendAudit(&broker.AuditEntry{At: clock, Kind: broker.AuditTokenIssued, GrantID: c.grant.ID, JTI: tok.JTI, Message: "token issued"})} {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		const group = 32
		groups := func(n int) (changed map[string]int) {
			changed = map[string]int{}
			for range n {
				before := bucketPages(t, s.Path())
				var made []cycle
				update(t, s, func(tx broker.Tx) error {
					for range group {
						made = append(made, submit(tx))
					}
					return nil
				})
				update(t, s, func(tx broker.Tx) error {
					for _, c := range made {
						redeem(tx, c)
					}
					return nil
				})
				for name, pages := range bucketPages(t, s.Path()) {
					for id := range pages {
						if !before[name][id] {
							changed[name]++
						}
					}
				}
			}
			return changed
		}
		for range 5000 / group / 10 {
			update(t, s, func(tx broker.Tx) error {
				var made []cycle
				for range 10 * group {
					made = append(made, submit(tx))
				}
				for _, c := range made {
					redeem(tx, c)
				}
				return nil
			})
		}
		const measured = 10
		name := map[bool]string{false: "random ids", true: "timed ids"}[timed]
		per[name] = map[string]float64{}
		for bucket, n := range groups(measured) {
			per[name][bucket] = float64(n) / (measured * group)
		}
	}
	for _, b := range []string{"requests", "decisions", "grants", "tokens", "grants_by_created", "grants_active", "due", "audit"} {
		t.Logf("%-18s pages rewritten per cycle: random ids %.2f, timed ids %.2f", b, per["random ids"][b], per["timed ids"][b])
	}
	for _, b := range []string{"requests", "decisions", "grants", "tokens"} {
		if r, tm := per["random ids"][b], per["timed ids"][b]; tm > r/2 {
			t.Errorf("%s: %.2f pages per cycle with timed ids, %.2f with random ones: want less than half", b, tm, r)
		}
	}
}
