package overload

import "time"

// releaseRounds is how many times Recovery releases memory after an
// overload, every Config.ReleaseAfter.
const releaseRounds = 12

// Recovery decides when the memory an overload took can go back to the
// operating system. Without help the Go runtime keeps the pages of a heap
// that grew: an idle node runs no garbage collection, and its resident
// size stays at the peak for minutes. The calls admitted during an
// overload end, and sipgo drops their transactions, up to 32 s after
// their last message, some time after the last request was shed; so
// Recovery is due every Config.ReleaseAfter after the last shed request,
// releaseRounds times (2 minutes by default), and then no more until the
// next overload; and once more as soon as the transaction window has
// drained (to a 64th of MaxTransactions), which is when what the
// overload admitted is gone. A burst that was admitted whole (the window
// grew to a 16th of MaxTransactions or more, nothing shed) is released
// the same way, once, when the window has drained after it: with the
// garbage-collection target a node runs at (cmd/dsn-node: 400%), the
// runtime would otherwise keep the burst's pages as the next heap goal.
// Not safe for concurrent use: the driver
// goroutine owns it.
//
// It also decides when the live-heap reading is stale: the runtime
// measures the live heap only when it collects garbage, and an idle node
// collects none, so after a load the last reading can stay above
// Config.MaxHeap and keep the gate shedding on a heap long since free.
// While the reading is at the limit, a collection is due at most once per
// heapRefresh.
type Recovery struct {
	after       time.Duration
	maxHeap     uint64
	drained     int // window size at which it counts as drained
	burst       int // window size that counts as a burst worth a release
	peak        int // largest window seen since the last release
	lastRelease time.Time
	drainedFor  time.Time // the last shed the drained window was released for
	lastGC      time.Time
}

// heapRefresh is the least time between two collections Recovery asks
// for to refresh a live-heap reading at the limit.
const heapRefresh = time.Second

// NewRecovery returns a Recovery for cfg (releases never due when
// ReleaseAfter is 0, collections never when MaxHeap is 0).
func NewRecovery(cfg Config) *Recovery {
	return &Recovery{after: cfg.ReleaseAfter, maxHeap: cfg.MaxHeap, drained: cfg.MaxTransactions / 64,
		burst: max(cfg.MaxTransactions/16, 1)}
}

// CollectDue reports whether to collect garbage now to refresh a live-heap
// reading of heap bytes.
func (r *Recovery) CollectDue(heap uint64, now time.Time) bool {
	if r.maxHeap == 0 || heap < r.maxHeap || now.Sub(r.lastGC) < heapRefresh {
		return false
	}
	r.lastGC = now
	return true
}

// Due reports whether to release memory now, given when the gate last
// shed a request (zero: never) and the size of its transaction window.
func (r *Recovery) Due(lastShed, now time.Time, window int) bool {
	r.peak = max(r.peak, window)
	if r.shedDue(lastShed, now, window) {
		r.peak = window
		return true
	}
	recent := !lastShed.IsZero() && now.Sub(lastShed) <= releaseRounds*r.after // the overload's schedule governs
	if r.after > 0 && !recent && r.peak >= r.burst && window <= r.drained {
		r.peak, r.lastRelease = window, now
		return true
	}
	return false
}

// shedDue is Due after an overload: every ReleaseAfter for
// releaseRounds, and once when the window has drained.
func (r *Recovery) shedDue(lastShed, now time.Time, window int) bool {
	if r.after <= 0 || lastShed.IsZero() {
		return false
	}
	since := now.Sub(lastShed)
	if since < r.after || since > releaseRounds*r.after {
		return false
	}
	if window <= r.drained && !r.drainedFor.Equal(lastShed) {
		r.drainedFor, r.lastRelease = lastShed, now
		return true
	}
	if r.lastRelease.After(lastShed) && now.Sub(r.lastRelease) < r.after {
		return false
	}
	r.lastRelease = now
	return true
}
