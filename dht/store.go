package dht

import (
	"hash/fnv"
	"sync"

	"github.com/google/btree"
)

// Store is one node's in-memory record table, ordered by ring position so
// that arcs of the ring (an owner's range, a digest bucket) can be walked
// cheaply. It is safe for concurrent use.
type Store struct {
	mu   sync.RWMutex
	tree *btree.BTreeG[*item]
	live int // records that are not tombstones
}

type item struct {
	id  ID
	rec Record
}

func itemLess(a, b *item) bool {
	if a.id != b.id {
		return a.id < b.id
	}
	return a.rec.Key < b.rec.Key
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{tree: btree.NewG[*item](32, itemLess)}
}

func pivot(key string) *item { return &item{id: HashKey(key), rec: Record{Key: key}} }

// Merge stores r if it is newer than the copy held (or none is held) and
// reports whether it did.
func (s *Store) Merge(r Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mergeLocked(r)
}

func (s *Store) mergeLocked(r Record) bool {
	it := &item{id: HashKey(r.Key), rec: r}
	if old, ok := s.tree.Get(it); ok {
		if !newer(&r, &old.rec) {
			return false
		}
		if !old.rec.Deleted {
			s.live--
		}
	}
	it.rec.Value = append([]byte(nil), r.Value...)
	s.tree.ReplaceOrInsert(it)
	if !r.Deleted {
		s.live++
	}
	return true
}

// Get returns the copy held for key, tombstones included.
func (s *Store) Get(key string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, ok := s.tree.Get(pivot(key))
	if !ok {
		return Record{}, false
	}
	return copyRecord(it.rec), true
}

// update runs fn on the copy held for key (ok false when none) under the
// store's lock; if fn returns a record, it is stored unconditionally.
func (s *Store) update(key string, fn func(cur Record, ok bool) (Record, bool, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur Record
	it, ok := s.tree.Get(pivot(key))
	if ok {
		cur = it.rec
	}
	next, write, err := fn(cur, ok)
	if err != nil || !write {
		return err
	}
	if ok && !cur.Deleted {
		s.live--
	}
	next.Value = append([]byte(nil), next.Value...)
	s.tree.ReplaceOrInsert(&item{id: HashKey(key), rec: next})
	if !next.Deleted {
		s.live++
	}
	return nil
}

// RemoveIf drops the copy of r.Key if it still has r's version, so a record
// handed to another node is only forgotten if no newer write arrived since.
func (s *Store) RemoveIf(r Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.tree.Get(pivot(r.Key))
	if !ok || it.rec.Version != r.Version || it.rec.Deleted != r.Deleted {
		return false
	}
	s.tree.Delete(it)
	if !it.rec.Deleted {
		s.live--
	}
	return true
}

// Len returns the number of records held, tombstones included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tree.Len()
}

// Live returns the number of records held that are not tombstones.
func (s *Store) Live() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live
}

// Expire drops every record whose expiry is at or before now (Unix ns) and
// returns how many it dropped.
func (s *Store) Expire(now int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dead []*item
	s.tree.Ascend(func(it *item) bool {
		if it.rec.Expires != 0 && it.rec.Expires <= now {
			dead = append(dead, it)
		}
		return true
	})
	for _, it := range dead {
		s.tree.Delete(it)
		if !it.rec.Deleted {
			s.live--
		}
	}
	return len(dead)
}

// Arc calls fn for every record whose ID lies on the arc (lo, hi], in ring
// order starting after lo, until fn returns false. lo == hi is the whole
// ring. fn must not call back into the store.
func (s *Store) Arc(lo, hi ID, fn func(id ID, r Record) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.arcLocked(lo, hi, fn)
}

func (s *Store) arcLocked(lo, hi ID, fn func(id ID, r Record) bool) {
	stopped := false
	walkFrom := func(from ID, to ID) {
		s.tree.AscendGreaterOrEqual(&item{id: from}, func(it *item) bool {
			if it.id > to || !fn(it.id, it.rec) {
				stopped = it.id <= to
				return false
			}
			return true
		})
	}
	if lo < hi {
		walkFrom(lo+1, hi)
		return
	}
	// The arc wraps past zero, or lo == hi and it is the whole ring.
	if lo != ^ID(0) {
		walkFrom(lo+1, ^ID(0))
	}
	if !stopped {
		walkFrom(0, hi)
	}
}

// Records returns copies of the records on the arc (lo, hi].
func (s *Store) Records(lo, hi ID) []Record {
	var out []Record
	s.Arc(lo, hi, func(_ ID, r Record) bool {
		out = append(out, copyRecord(r))
		return true
	})
	return out
}

// bucketOf returns which of n equal sub-arcs of (lo, hi] holds id.
func bucketOf(id, lo, hi ID, n int) int {
	span := uint64(hi - lo) // 0 means the whole ring
	off := uint64(id - lo - 1)
	if span == 0 {
		return int(off / (^uint64(0)/uint64(n) + 1))
	}
	w := span/uint64(n) + 1
	return int(off / w)
}

// bucketArc returns the sub-arc of (lo, hi] that bucket b of n covers.
func bucketArc(lo, hi ID, n, b int) (ID, ID) {
	span := uint64(hi - lo)
	w := span/uint64(n) + 1
	if span == 0 {
		w = ^uint64(0)/uint64(n) + 1
	}
	start := lo + ID(uint64(b)*w)
	end := start + ID(w)
	if b == n-1 || uint64(end-lo) > span && span != 0 {
		end = hi
	}
	return start, end
}

// Summaries computes the anti-entropy digest of the arc (lo, hi] split into
// n buckets: each bucket is an order-independent sum of a hash of every
// record's (key, version, deleted).
func (s *Store) Summaries(lo, hi ID, n int) []uint64 {
	out := make([]uint64, n)
	s.Arc(lo, hi, func(id ID, r Record) bool {
		out[bucketOf(id, lo, hi, n)] += recordHash(&r)
		return true
	})
	return out
}

// BucketRecords returns copies of the records of the given buckets of the
// arc (lo, hi] split into n.
func (s *Store) BucketRecords(lo, hi ID, n int, buckets []int) []Record {
	want := make(map[int]bool, len(buckets))
	for _, b := range buckets {
		want[b] = true
	}
	var out []Record
	s.Arc(lo, hi, func(id ID, r Record) bool {
		if want[bucketOf(id, lo, hi, n)] {
			out = append(out, copyRecord(r))
		}
		return true
	})
	return out
}

func recordHash(r *Record) uint64 {
	h := fnv.New64a()
	h.Write([]byte(r.Key))
	var b [10]byte
	v := r.Version
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
	if r.Deleted {
		b[8] = 1
	}
	b[9] = 0xa5
	h.Write(b[:])
	// Mix so that a sum of hashes does not cancel structurally.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

func copyRecord(r Record) Record {
	r.Value = append([]byte(nil), r.Value...)
	return r
}
