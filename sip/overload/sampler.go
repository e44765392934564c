package overload

import (
	"math"
	"runtime/metrics"
	"time"
)

// Sampler reads the two load signals the Go runtime keeps (runtime/metrics)
// for the gate:
//
//   - the scheduling delay: how long runnable goroutines waited for a CPU
//     (/sched/latencies:seconds), as a quantile of the delays recorded
//     since the previous Sample. A node with more work than CPU shows it
//     here first: sipgo runs every message on its own goroutine, and those
//     queue;
//   - the live heap after the last garbage collection
//     (/gc/heap/live:bytes): what the transactions, calls and buffers
//     held now take (the process's resident size is about twice that).
//
// Not safe for concurrent use: one driver goroutine samples it on a ticker.
type Sampler struct {
	q      float64
	sample []metrics.Sample
	prev   []uint64
}

const (
	schedLatencies = "/sched/latencies:seconds"
	heapLive       = "/gc/heap/live:bytes"
)

// NewSampler returns a sampler reporting quantile q (0 < q <= 1, e.g.
// 0.99) of the scheduling delays.
func NewSampler(q float64) *Sampler {
	s := &Sampler{q: q, sample: []metrics.Sample{{Name: schedLatencies}, {Name: heapLive}}}
	s.Sample()
	return s
}

// Sample returns the scheduling delay quantile since the last call (0 when
// none was recorded) and the live heap in bytes.
func (s *Sampler) Sample() (queueDelay time.Duration, heapBytes uint64) {
	metrics.Read(s.sample)
	if v := s.sample[0].Value; v.Kind() == metrics.KindFloat64Histogram {
		h := v.Float64Histogram()
		queueDelay = quantileSince(s.prev, h.Counts, h.Buckets, s.q)
		s.prev = append(s.prev[:0], h.Counts...)
	}
	if v := s.sample[1].Value; v.Kind() == metrics.KindUint64 {
		heapBytes = v.Uint64()
	}
	return queueDelay, heapBytes
}

// quantileSince returns quantile q of the observations counted in cur but
// not in prev (cumulative histograms with the same buckets; prev may be
// empty), as the lower boundary of the bucket it falls in.
func quantileSince(prev, cur []uint64, buckets []float64, q float64) time.Duration {
	var total uint64
	for i, c := range cur {
		total += c - at(prev, i)
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range cur {
		seen += c - at(prev, i)
		if seen >= want && seen > 0 {
			lo := buckets[i]
			if math.IsInf(lo, -1) || lo < 0 {
				return 0
			}
			return time.Duration(lo * float64(time.Second))
		}
	}
	return 0
}

func at(s []uint64, i int) uint64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// Sustained turns the scheduling delays of successive sample intervals
// into the delay that held through the last n of them (the smallest): a
// node is CPU-bound when its goroutines keep waiting, not when one
// garbage collection or one burst made them wait once. A spike sheds the
// new requests of a whole interval for nothing: the backlog behind it
// drains in milliseconds, well inside SIP's retransmission timer T1
// (500 ms). Not safe for concurrent use.
type Sustained struct {
	last []time.Duration
	next int
}

// NewSustained returns a Sustained over n intervals (at least 1). Until n
// intervals have been added it reports 0.
func NewSustained(n int) *Sustained { return &Sustained{last: make([]time.Duration, max(n, 1))} }

// Add records the delay of one interval and returns the delay sustained
// through the last n.
func (s *Sustained) Add(d time.Duration) time.Duration {
	s.last[s.next] = d
	s.next = (s.next + 1) % len(s.last)
	m := d
	for _, x := range s.last {
		m = min(m, x)
	}
	return m
}
