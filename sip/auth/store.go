package auth

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Store holds the credentials (HA1 hashes) the Digest authenticator checks
// against. It is read-mostly: look-ups take no lock, Reload swaps the whole
// set at once. Safe for concurrent use.
type Store struct {
	path   string // "" when built by NewStore
	reload sync.Mutex
	cur    atomic.Pointer[storeSnapshot]
}

type storeSnapshot struct {
	ha1      map[credKey]string
	entries  int
	warnings []error
}

type credKey struct {
	user, realm string
	alg         Algorithm
}

// NewStore returns a Store holding entries (e.g. from ParseFile); it
// rejects invalid entries and duplicates with an error wrapping
// ErrCredentials. Reload is not available on it.
func NewStore(entries []Entry) (*Store, error) {
	snap, err := newSnapshot(entries)
	if err != nil {
		return nil, err
	}
	s := &Store{}
	s.cur.Store(snap)
	return s, nil
}

// LoadFile reads the credentials file at path (format: ParseFile). A file
// that its group or others may read loads, with a warning wrapping
// ErrInsecureFile in Warnings: HA1 hashes are password equivalents.
func LoadFile(path string) (*Store, error) {
	s := &Store{path: path}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the file the Store was loaded from and, only if all of
// it is valid, replaces the credentials at once; on error the old set
// stays in force. Requests being checked meanwhile see either the old or
// the new set. It blocks on file I/O.
func (s *Store) Reload() error {
	if s.path == "" {
		return fmt.Errorf("%w: store was not loaded from a file", ErrCredentials)
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("auth: credentials file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("auth: credentials file: %w", err)
	}
	entries, err := ParseFile(f, s.path)
	if err != nil {
		return err
	}
	snap, err := newSnapshot(entries)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		snap.warnings = append(snap.warnings, fmt.Errorf("%w: %s has mode %#o; HA1 hashes are password equivalents, chmod 600 it",
			ErrInsecureFile, s.path, perm))
	}
	s.cur.Store(snap)
	return nil
}

func newSnapshot(entries []Entry) (*storeSnapshot, error) {
	snap := &storeSnapshot{ha1: make(map[credKey]string, len(entries)), entries: len(entries)}
	for i, e := range entries {
		if err := validateEntry(e); err != nil {
			return nil, fmt.Errorf("%w: entry %d (line %d): %w", ErrCredentials, i+1, e.Line, err)
		}
		k := credKey{e.User, e.Realm, e.Algorithm}
		if _, dup := snap.ha1[k]; dup {
			return nil, fmt.Errorf("%w: entry %d (line %d): user %q in realm %q has two %s hashes",
				ErrCredentials, i+1, e.Line, e.User, e.Realm, e.Algorithm)
		}
		snap.ha1[k] = e.HA1
	}
	if len(entries) == 0 {
		snap.warnings = append(snap.warnings, fmt.Errorf("%w: no credentials: nobody can register", ErrCredentials))
	}
	return snap, nil
}

// Path is the file the Store was loaded from; "" for NewStore.
func (s *Store) Path() string { return s.path }

// Len is the number of entries (user, realm, algorithm) held.
func (s *Store) Len() int { return s.cur.Load().entries }

// Warnings returns problems of the loaded set that do not stop it from
// being used: the file's permissions (ErrInsecureFile), an empty file.
func (s *Store) Warnings() []error { return slices.Clone(s.cur.Load().warnings) }

// HasRealm reports whether any entry is for realm.
func (s *Store) HasRealm(realm string) bool {
	for k := range s.cur.Load().ha1 {
		if k.realm == realm {
			return true
		}
	}
	return false
}

// lookup returns the HA1 of user in realm for alg.
func (s *Store) lookup(user, realm string, alg Algorithm) (string, bool) {
	ha1, ok := s.cur.Load().ha1[credKey{user, realm, alg}]
	return ha1, ok
}

// algorithmsOf returns those of algs for which user has an HA1 in realm,
// in the order of algs.
func (s *Store) algorithmsOf(user, realm string, algs []Algorithm) []Algorithm {
	snap := s.cur.Load()
	var out []Algorithm
	for _, a := range algs {
		if _, ok := snap.ha1[credKey{user, realm, a}]; ok {
			out = append(out, a)
		}
	}
	return out
}
