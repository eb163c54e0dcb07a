package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Kinds of open failure, for errors.Is. The errors Open returns say more,
// and name the path.
var (
	ErrLocked       = errors.New("store is locked by another process")
	ErrNotWritStore = errors.New("not a writ store")
	ErrSchemaTooNew = errors.New("store schema is newer than this writ understands")
	ErrExposed      = errors.New("store is readable by other users")
)

// openError is an open failure with its own message, its kind and cause.
type openError struct {
	msg   string
	kind  error
	cause error
}

func (e *openError) Error() string { return e.msg }

func (e *openError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func notWritStore(path, why string, cause error) error {
	return &openError{msg: fmt.Sprintf("store %s is not a writ store: %s", path, why), kind: ErrNotWritStore, cause: cause}
}

// boltOpenError explains an error of bolt.Open.
func boltOpenError(path string, err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return &openError{msg: fmt.Sprintf("store %s is locked by another process (is another writ running?)", path), kind: ErrLocked, cause: err}
	}
	return fmt.Errorf("open store %s: %w", path, err)
}

// Open opens the writ store at path for reading and writing, creating it
// (and its directory, mode 0700) when it does not exist. It fails with a
// message naming the path when another process holds the file (after
// opts.Timeout), when the file is not a writ store, or when its schema is
// newer than this writ's. A file that is not a writ store is left exactly
// as it was.
func Open(path string, opts Options) (*Store, error) {
	if err := prepare(path, opts, false); err != nil {
		return nil, err
	}
	// bbolt can write to a file it opens read-write (it initialises an
	// empty one, and rewrites a freelist written with NoFreelistSync, as
	// etcd's are), so the file is checked through a read-only open first.
	checked, err := openReadOnly(path, opts)
	if err != nil {
		return nil, err
	}
	if err := checked.Close(); err != nil {
		return nil, err
	}
	// The store holds the private signing keys: a copy restored readable by
	// others is refused rather than used (bbolt sets the mode only on create).
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, &openError{msg: fmt.Sprintf("store %s is readable by others (mode %04o) and holds the issuer's private keys: run chmod 600 %s",
			path, fi.Mode().Perm(), path), kind: ErrExposed}
	}
	db, err := bolt.Open(path, 0o600, opts.bolt(false))
	if err != nil {
		return nil, boltOpenError(path, err)
	}
	var missing bool
	err = db.View(func(btx *bolt.Tx) error {
		missing = missingBuckets(btx)
		return nil
	})
	if err == nil && missing {
		err = db.Update(ensureBuckets)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db, path: path, trimmer: newTrimmer(db)}, nil
}

// OpenReadOnly opens an existing writ store for reading, with the same
// checks as Open. bbolt's shared lock means it fails as locked while a
// writ holds the store open read-write. Update and Batch fail.
func OpenReadOnly(path string, opts Options) (*Store, error) {
	if err := prepare(path, opts, true); err != nil {
		return nil, err
	}
	s, err := openReadOnly(path, opts)
	if err != nil {
		return nil, err
	}
	s.trimmer = newTrimmer(s.db)
	return s, nil
}

// openReadOnly opens a prepared bbolt file read-only and checks that it is
// a writ store. Open uses it only to check, so it trims nothing.
func openReadOnly(path string, opts Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, opts.bolt(true))
	if err != nil {
		return nil, boltOpenError(path, err)
	}
	if err := checkStore(path, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db, path: path, readOnly: true}, nil
}

// prepare creates a missing store (unless readOnly) and otherwise checks,
// by reading only, that path is a bbolt file.
func prepare(path string, opts Options, readOnly bool) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && readOnly:
		return &openError{msg: fmt.Sprintf("store %s does not exist", path), cause: err}
	case errors.Is(err, fs.ErrNotExist):
		return create(path, opts)
	case err != nil:
		return fmt.Errorf("open store %s: %w", path, err)
	case fi.IsDir():
		return notWritStore(path, "it is a directory", nil)
	case !fi.Mode().IsRegular():
		return notWritStore(path, "it is not a regular file", nil)
	case fi.Size() == 0:
		// writ never leaves an empty store behind (see create), so an empty
		// file is someone else's.
		return notWritStore(path, "the file is empty (remove it, or choose another path, for writ to create a store)", nil)
	}
	return checkHeader(path)
}

// bboltMagic is the magic number at the start of a bbolt meta page, stored
// in native byte order after the 16-byte page header.
const (
	bboltMagic      = 0xED0CDAED
	bboltMagicAt    = 16
	bboltHeaderSize = bboltMagicAt + 4
)

// checkHeader tells a bbolt file from anything else by its first meta
// page, so the error can say so plainly.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer f.Close()
	var hdr [bboltHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return notWritStore(path, "it is too short to be a bbolt database", nil)
		}
		return fmt.Errorf("read store %s: %w", path, err)
	}
	if binary.NativeEndian.Uint32(hdr[bboltMagicAt:]) != bboltMagic {
		return notWritStore(path, "it is not a bbolt database", nil)
	}
	return nil
}

// checkStore checks a bbolt file for writ's meta bucket, magic and schema.
func checkStore(path string, db *bolt.DB) (err error) {
	defer func() {
		// bbolt panics on some kinds of corruption; refuse the file instead.
		if r := recover(); r != nil {
			err = fmt.Errorf("open store %s: corrupt bbolt database: %v", path, r)
		}
	}()
	return db.View(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if meta == nil {
			return notWritStore(path, "it is a bbolt database without writ's meta bucket", nil)
		}
		if string(meta.Get(keyMagic)) != magic {
			return notWritStore(path, fmt.Sprintf("its meta bucket lacks the %q magic", magic), nil)
		}
		v := meta.Get(keySchema)
		if len(v) != 4 || binary.BigEndian.Uint32(v) == 0 {
			return notWritStore(path, "its schema version is missing or malformed", nil)
		}
		if n := binary.BigEndian.Uint32(v); n > schemaVersion {
			return &openError{
				msg:  fmt.Sprintf("store %s has schema %d, this writ understands up to %d; upgrade writ", path, n, schemaVersion),
				kind: ErrSchemaTooNew,
			}
		}
		return nil
	})
}

// create makes a new store at path. It initialises the store under a
// temporary name and links it into place, so a crash never leaves a
// half-made store at path, and two writs starting at once end up sharing
// the first one's store.
func create(path string, opts Options) (err error) {
	dir := filepath.Dir(path)
	defer func() {
		if err != nil {
			err = fmt.Errorf("create store %s: %w", path, err)
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return err
	}
	db, err := bolt.Open(tmp, 0o600, opts.bolt(false))
	if err != nil {
		return err
	}
	err = db.Update(ensureBuckets)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		// Some filesystems have no hard links; a rename loses only the
		// race between two writs creating the same store.
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	if opts.NoSync {
		return nil
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
