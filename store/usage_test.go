package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/writhq/writ/broker"
)

func TestUsage(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "writ.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const grants, records = 300, 50
	update(t, s, func(tx broker.Tx) error {
		for i := range grants {
			if err := tx.PutGrant(sampleGrant(fmt.Sprintf("g%04d", i), "a", broker.GrantActive, t0)); err != nil {
				return err
			}
		}
		for i := range records {
			if err := tx.PutRecord(broker.RecordSSFStream, fmt.Sprintf("s%04d", i), make([]byte, 3000)); err != nil {
				return err
			}
		}
		return nil
	})
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]BucketUsage{}
	var pages int
	for _, b := range u.Buckets {
		byName[b.Name] = b
		pages += b.Pages
		if b.Inuse > b.Alloc || b.Alloc != int64(b.Pages*u.PageSize) {
			t.Errorf("%s: %d pages, %d bytes allocated, %d in use", b.Name, b.Pages, b.Alloc, b.Inuse)
		}
	}
	if len(u.Buckets) != len(topBuckets) {
		t.Errorf("%d buckets, want %d", len(u.Buckets), len(topBuckets))
	}
	for _, tc := range []struct {
		bucket        string
		keys          int
		minPages      int
		minInuseBytes int64
	}{
		{"grants", grants, 2, grants * 200},
		{"grants_active", grants, 1, grants * 20},
		{"due", grants, 1, grants * 20},
		// The records bucket holds one nested bucket per namespace; their
		// keys and pages count in it.
		{"records", records + len(broker.RecordNamespaces), records * 3000 / 4096, records * 3000},
	} {
		b := byName[tc.bucket]
		if b.Keys != tc.keys || b.Pages < tc.minPages || b.Inuse < tc.minInuseBytes {
			t.Errorf("%s: %+v; want %d keys, at least %d pages and %d bytes in use", tc.bucket, b, tc.keys, tc.minPages, tc.minInuseBytes)
		}
	}
	if int64(pages*u.PageSize) > u.FileBytes || u.OtherPages < 3 || int64((pages+u.OtherPages)*u.PageSize) > u.FileBytes {
		t.Errorf("buckets take %d pages of %d bytes and %d are others, in a %d-byte file", pages, u.PageSize, u.OtherPages, u.FileBytes)
	}
}
