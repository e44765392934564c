package overload

// window is the set of transactions the gate handed to the SIP stack in
// the last Config.TrackTTL, by the hash of their identity (Gate.txKey),
// with the time each leaves it and its weight (see weight). A FIFO queue in admission order finds
// the ones past their time (they all get the same TTL). It is the gate's
// only table: MaxTransactions bounds it (Gate.Decide refuses beyond), and
// it gives its memory back once it is mostly empty, since a Go map keeps
// the buckets of its largest size. Not safe for concurrent use: the
// gate's mutex guards it.
type window struct {
	until map[uint64]int64 // key -> leaves at (unix nanoseconds)
	order []windowEntry    // the same, oldest first, from head on
	head  int
	size  int // the entries' weights
	news  int // the weights of entries of new out-of-dialog requests
	peak  int // most entries since until was made
}

type windowEntry struct {
	key    uint64
	until  int64
	weight int32
	isNew  bool
}

// weightUnit is the message size one unit of the window's weight stands
// for: a request counts once, and once more for every weightUnit bytes
// of its size, since what its transaction holds grows with it.
const weightUnit = 2048

// weight is a request's weight in the window, given its size in bytes.
func weight(size int) int { return 1 + max(size, 0)/weightUnit }

// windowShrinkMin is the size below which the window keeps its memory.
const windowShrinkMin = 1024

func newWindow() window { return window{until: make(map[uint64]int64)} }

// len returns the sum of the entries' weights.
func (w *window) len() int { return w.size }

func (w *window) has(key uint64) bool {
	_, ok := w.until[key]
	return ok
}

// add puts key in the window until the given time with weight wt; isNew
// marks a new out-of-dialog request.
func (w *window) add(key uint64, until int64, wt int, isNew bool) {
	w.until[key] = until
	w.order = append(w.order, windowEntry{key, until, int32(wt), isNew})
	w.size += wt
	if isNew {
		w.news += wt
	}
	w.peak = max(w.peak, len(w.until))
}

// expire removes the entries whose time is at or before now, and
// returns memory a busy spell left behind: the map is rebuilt once it
// holds less than a quarter of its peak, and the queue compacted once
// its dead prefix is half of it (or reallocated when its capacity is
// four times what it holds).
func (w *window) expire(now int64) {
	for w.head < len(w.order) && w.order[w.head].until <= now {
		e := w.order[w.head]
		delete(w.until, e.key)
		w.size -= int(e.weight)
		if e.isNew {
			w.news -= int(e.weight)
		}
		w.order[w.head] = windowEntry{}
		w.head++
	}
	live := len(w.order) - w.head
	switch {
	case live == 0 && cap(w.order) > windowShrinkMin:
		w.order, w.head = nil, 0
	case w.head > 0 && w.head*2 >= len(w.order):
		if cap(w.order) > windowShrinkMin && live*4 < cap(w.order) {
			w.order = append(make([]windowEntry, 0, 2*live), w.order[w.head:]...)
		} else {
			n := copy(w.order, w.order[w.head:])
			clear(w.order[n:])
			w.order = w.order[:n]
		}
		w.head = 0
	}
	if w.peak > windowShrinkMin && len(w.until)*4 < w.peak {
		m := make(map[uint64]int64, len(w.until))
		for k, v := range w.until {
			m[k] = v
		}
		w.until, w.peak = m, len(m)
	}
}
