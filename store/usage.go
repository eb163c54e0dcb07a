package store

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// BucketUsage is the room one top-level bucket (with the buckets nested in
// it) takes in the store's file.
type BucketUsage struct {
	Name string `json:"name"`
	Keys int    `json:"keys"`
	// Pages is how many pages its B+tree holds (leaf and branch, overflow
	// included); Alloc their bytes, Inuse the bytes its keys and values
	// fill, so Inuse/Alloc is how full its pages are.
	Pages int   `json:"pages"`
	Alloc int64 `json:"alloc_bytes"`
	Inuse int64 `json:"inuse_bytes"`
}

// Usage is where the store's file goes: each bucket's pages, the free
// pages, and the file's size.
type Usage struct {
	FileBytes int64 `json:"file_bytes"`
	PageSize  int   `json:"page_size"`
	// OtherPages are the pages up to the high-water mark that no bucket
	// holds: free pages, the freelist, the meta pages and the root.
	OtherPages int           `json:"other_pages"`
	Buckets    []BucketUsage `json:"buckets"` // in topBuckets order
}

// Usage walks every bucket of the store (one read transaction, every page
// read: seconds on a store of a million records).
func (s *Store) Usage() (*Usage, error) {
	u := &Usage{PageSize: s.db.Info().PageSize}
	var pages int
	err := s.db.View(func(btx *bolt.Tx) error {
		for _, name := range topBuckets {
			b := btx.Bucket(name)
			if b == nil {
				continue
			}
			st := b.Stats()
			bu := BucketUsage{Name: string(name), Keys: st.KeyN,
				Pages: st.BranchPageN + st.BranchOverflowN + st.LeafPageN + st.LeafOverflowN,
				Alloc: int64(st.BranchAlloc + st.LeafAlloc), Inuse: int64(st.BranchInuse + st.LeafInuse)}
			u.Buckets = append(u.Buckets, bu)
			pages += bu.Pages
		}
		// bbolt does not load the freelist of a store opened read-only,
		// so the pages no bucket holds are counted rather than listed.
		u.OtherPages = int(btx.Size()/int64(u.PageSize)) - pages
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the usage of store %s: %w", s.path, err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("read the usage of store %s: %w", s.path, err)
	}
	u.FileBytes = fi.Size()
	return u, nil
}
