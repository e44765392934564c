package registrar

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BindingStore holds the binding set of every address-of-record. In a
// node it is the Chord DHT (key: the canonical AOR, value: MarshalBindings,
// record expiry: BindingSet.RetainUntil); MemStore serves tests and a
// single node.
//
// Implementations are safe for concurrent use and honour ctx.
type BindingStore interface {
	// Get returns the AOR's set and its version. An AOR with no record
	// (never written, deleted, or past its RetainUntil) gives an empty set,
	// version 0 and a nil error; an error means the store could not answer.
	Get(ctx context.Context, aor string) (BindingSet, uint64, error)
	// Put replaces the AOR's set if its current version is still ifVersion
	// (0: only if there is no record), else it fails with an error wrapping
	// ErrConflict and changes nothing. The store assigns a new version,
	// never reused for that AOR. A set whose RetainUntil is not in the
	// future deletes the record; otherwise the storage drops the record
	// everywhere once RetainUntil passes.
	Put(ctx context.Context, aor string, set BindingSet, ifVersion uint64) error
}

// MemStore is an in-memory BindingStore. It keeps every set encoded with
// MarshalBindings, as the DHT does, so its footprint is the real one.
type MemStore struct {
	clock func() time.Time

	mu   sync.Mutex
	recs map[string]memRecord
	seq  uint64 // last version handed out, store-wide, so versions are never reused
}

type memRecord struct {
	value   []byte
	version uint64
	expires time.Time // zero: never
}

var _ BindingStore = (*MemStore)(nil)

// NewMemStore returns an empty store whose record expiry follows clock
// (time.Now if nil).
func NewMemStore(clock func() time.Time) *MemStore {
	if clock == nil {
		clock = time.Now
	}
	return &MemStore{clock: clock, recs: make(map[string]memRecord)}
}

// Get implements BindingStore.
func (s *MemStore) Get(ctx context.Context, aor string) (BindingSet, uint64, error) {
	if err := ctx.Err(); err != nil {
		return BindingSet{}, 0, fmt.Errorf("registrar: memstore get %q: %w", aor, err)
	}
	now := s.clock()
	s.mu.Lock()
	rec, ok := s.recs[aor]
	if ok && !rec.live(now) {
		delete(s.recs, aor)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return BindingSet{}, 0, nil
	}
	set, err := UnmarshalBindings(rec.value)
	if err != nil {
		return BindingSet{}, 0, fmt.Errorf("registrar: memstore get %q: %w", aor, err)
	}
	return set, rec.version, nil
}

// Put implements BindingStore.
func (s *MemStore) Put(ctx context.Context, aor string, set BindingSet, ifVersion uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registrar: memstore put %q: %w", aor, err)
	}
	value, err := MarshalBindings(set)
	if err != nil {
		return fmt.Errorf("registrar: memstore put %q: %w", aor, err)
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[aor]
	var curVersion uint64
	if ok && cur.live(now) {
		curVersion = cur.version
	}
	if curVersion != ifVersion {
		return fmt.Errorf("registrar: memstore put %q: have version %d, want %d: %w", aor, curVersion, ifVersion, ErrConflict)
	}
	s.seq++
	if !set.RetainUntil.IsZero() && !set.RetainUntil.After(now) {
		delete(s.recs, aor)
		return nil
	}
	s.recs[aor] = memRecord{value: value, version: s.seq, expires: set.RetainUntil}
	return nil
}

// Len returns the number of records, live or not yet swept.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// Sweep drops the records past their RetainUntil and returns how many it
// dropped. Get drops such records lazily; a driver may call Sweep
// periodically to bound memory.
func (s *MemStore) Sweep() int {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, rec := range s.recs {
		if !rec.live(now) {
			delete(s.recs, k)
			n++
		}
	}
	return n
}

func (r memRecord) live(now time.Time) bool {
	return r.expires.IsZero() || r.expires.After(now)
}
