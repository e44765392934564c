package auth

import (
	"container/heap"
	"sync"
	"time"
)

// replayTracker remembers, for every nonce used in a successful
// authentication, the highest nonce count seen, so a captured request
// cannot be sent again (RFC 7616 section 5.1). Memory is bounded: entries
// leave when their nonce expires, and when the tracker is full the
// earliest-issued entry is evicted and the low-water mark raised to it; a
// nonce at or below the mark that is not tracked any more is treated as
// used (the client gets a stale challenge and retries with a fresh nonce),
// so eviction can never let a replay through. Safe for concurrent use.
type replayTracker struct {
	mu      sync.Mutex
	max     int
	entries map[nonceKey]*replayEntry
	order   replayHeap // by key, so by issue time and by expiry
	low     nonceKey   // valid when hasLow
	hasLow  bool
}

type replayEntry struct {
	key     nonceKey
	nc      uint32
	expires time.Time
}

func newReplayTracker(max int) *replayTracker {
	return &replayTracker{max: max, entries: make(map[nonceKey]*replayEntry)}
}

// use records the authenticated use of nonce key with count nc at now. It
// reports false for a replay: nc is not higher than a count already seen
// with the nonce, or the nonce may have been used and forgotten. A request
// without qop has nc 0, so its nonce is good for one request only.
// expires is when the nonce stops being valid anyway.
func (t *replayTracker) use(key nonceKey, nc uint32, expires, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.order) > 0 && !t.order[0].expires.After(now) {
		delete(t.entries, heap.Pop(&t.order).(*replayEntry).key)
	}
	if e, ok := t.entries[key]; ok {
		if nc <= e.nc {
			return false
		}
		e.nc = nc
		return true
	}
	if t.hasLow && !t.low.less(key) {
		return false
	}
	e := &replayEntry{key: key, nc: nc, expires: expires}
	t.entries[key] = e
	heap.Push(&t.order, e)
	if len(t.order) > t.max {
		old := heap.Pop(&t.order).(*replayEntry)
		delete(t.entries, old.key)
		if !t.hasLow || t.low.less(old.key) {
			t.low, t.hasLow = old.key, true
		}
	}
	return true
}

// len is the number of nonces tracked.
func (t *replayTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// replayHeap is a min-heap of entries by key.
type replayHeap []*replayEntry

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].key.less(h[j].key) }
func (h replayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)        { *h = append(*h, x.(*replayEntry)) }
func (h *replayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
