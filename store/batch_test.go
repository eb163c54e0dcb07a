package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/writhq/writ/broker"
)

// TestBatchConcurrent runs many Batch calls at once, some failing and some
// panicking, and checks each gets its own outcome and only the successful
// ones are written.
func TestBatchConcurrent(t *testing.T) {
	s := MustOpen(t)
	const n = 300
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("g%03d", i)
			errs[i] = s.Batch(t.Context(), func(tx broker.Tx) error {
				if err := tx.PutGrant(&broker.Grant{ID: id, AgentID: "a", State: broker.GrantActive, CreatedAt: t0, ExpiresAt: t0}); err != nil {
					return err
				}
				if err := tx.AppendAudit(&broker.AuditEntry{At: t0, Kind: broker.AuditTokenIssued, GrantID: id}); err != nil {
					return err
				}
				switch {
				case i%13 == 0:
					panic("bug in " + id)
				case i%5 == 0:
					return broker.Errorf(broker.ECONFLICT, "refused %s", id)
				}
				return nil
			})
		})
	}
	wg.Wait()
	ok := 0
	view(t, s, func(tx broker.TxReader) error {
		for i, err := range errs {
			id := fmt.Sprintf("g%03d", i)
			_, getErr := tx.Grant(id)
			switch {
			case i%13 == 0:
				if err == nil || !strings.Contains(err.Error(), "panicked") {
					t.Errorf("%s: %v, want the panic as an error", id, err)
				}
				if errors.Is(err, broker.ErrStoreUnavailable) {
					t.Errorf("%s: %v: a panic is not a store that cannot write", id, err)
				}
			case i%5 == 0:
				if broker.ErrorCode(err) != broker.ECONFLICT || !strings.Contains(err.Error(), id) {
					t.Errorf("%s: %v, want its own conflict error", id, err)
				}
			default:
				if err != nil {
					t.Errorf("%s: %v", id, err)
				}
				ok++
				if getErr != nil {
					t.Errorf("%s succeeded but is not stored: %v", id, getErr)
				}
				continue
			}
			if getErr == nil {
				t.Errorf("%s failed but was written", id)
			}
		}
		return nil
	})
	count, err := broker.VerifyAuditLog(t.Context(), s)
	if err != nil || count != uint64(ok) {
		t.Errorf("audit: %d entries, %v; want %d", count, err, ok)
	}
}

func TestBatchErrorUnwrapped(t *testing.T) {
	s := MustOpen(t)
	boom := errors.New("boom")
	if err := s.Batch(t.Context(), func(broker.Tx) error { return boom }); err != boom { //nolint:errorlint
		t.Errorf("Batch returned %v, want fn's error itself", err)
	}
}
