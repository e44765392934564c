package sippbench

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Sample is a reading of a system under test, summed over its processes.
type Sample struct {
	At         time.Time
	Goroutines float64 // go_goroutines (0 for a server without)
	Heap       float64 // go_memstats_heap_inuse_bytes (0 for a server without)
	Live       float64 // go_memstats_heap_alloc_bytes: the live objects after a forced GC (0 for a server without)
	RSS        float64 // resident memory, bytes
	CPU        float64 // CPU time used so far, seconds (user + system)
}

// System is a server a benchmark loads: dsn-node fleets (Nodes) or another
// SIP server.
type System interface {
	// Sample reads the system now; with gc, a Go server collects garbage
	// first so that Heap is its live heap.
	Sample(gc bool) (Sample, error)
	// Recover waits, after a step that failed, until the system is back
	// to where it was before the step (goroutines, and live heap unless
	// before.Heap is +Inf) and healthy again.
	Recover(t fleet.TB, before Sample)
	// String names it in notes ("nodes", "kamailio").
	String() string
}

// Quieter is a System that knows better than WaitQuiet when it is ready
// for the next step; Climb calls Quiet before each step when a System has
// it.
type Quieter interface {
	Quiet(t fleet.TB)
}

// Ready waits until sys is ready for a step: its Quiet, else WaitQuiet
// for up to 30 s.
func Ready(t fleet.TB, sys System) {
	t.Helper()
	if q, ok := sys.(Quieter); ok {
		q.Quiet(t)
		return
	}
	WaitQuiet(t, sys, 30*time.Second)
}

// MustSample reads s or fails the test.
func MustSample(t fleet.TB, s System, gc bool) Sample {
	t.Helper()
	x, err := s.Sample(gc)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// WaitQuiet polls the system's CPU time until, over two half-second
// windows in a row, it used less than 30% of one core, so a batch does not
// start on the backlog of the last one. (An idle fleet uses a few percent
// for its ring maintenance, more once it holds hundreds of thousands of
// registrations; a backlog keeps a node near a full core.) It gives up
// after d, saying so in the log.
func WaitQuiet(t fleet.TB, s System, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	prev := MustSample(t, s, false)
	var load float64
	calm := 0
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cur := MustSample(t, s, false)
		load = (cur.CPU - prev.CPU) / cur.At.Sub(prev.At).Seconds()
		if load < 0.3 {
			calm++
		} else {
			calm = 0
		}
		if calm == 2 {
			return
		}
		prev = cur
	}
	t.Logf("%s still busy after %s (%.0f%% of a core); going on", s, d, 100*load)
}

// Nodes is a set of dsn-node processes (started with -pprof, for the
// forced collections) as a System.
type Nodes struct {
	Procs []*fleet.Proc
	// DrainMax bounds Recover's wait for goroutines and live heap.
	DrainMax time.Duration
	// EmptyWindow makes Quiet also wait (up to 60 s) until the nodes'
	// overload gates hold no transaction (dsn_sip_transactions 0): the
	// gate admits new requests only while they take less than half its
	// window of the last 32 s, so without the wait one step's requests
	// would count against the next.
	EmptyWindow bool
}

var (
	_ System  = Nodes{}
	_ Quieter = Nodes{}
)

// Quiet waits, with EmptyWindow, until the transaction windows are
// empty, then until the nodes are quiet.
func (n Nodes) Quiet(t fleet.TB) {
	t.Helper()
	if n.EmptyWindow {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var held float64
			for _, p := range n.Procs {
				m, err := p.Metrics()
				if err != nil {
					t.Fatal(err)
				}
				held += fleet.MetricSum(m, "dsn_sip_transactions")
			}
			if held == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Logf("%s: %.0f transactions still in the overload windows after 60 s; going on", n, held)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	WaitQuiet(t, n, 30*time.Second)
}

func (n Nodes) String() string { return "nodes" }

// Sample reads every node's /metrics; with gc, it first has each node
// collect garbage (GET /debug/pprof/heap?gc=1) so that Heap is the live
// heap, not whatever the last cycle left.
func (n Nodes) Sample(gc bool) (Sample, error) {
	s := Sample{At: time.Now()}
	c := http.Client{Timeout: 5 * time.Second}
	for _, p := range n.Procs {
		if gc {
			res, err := c.Get("http://" + p.Admin + "/debug/pprof/heap?gc=1")
			if err != nil {
				return s, fmt.Errorf("sippbench: %w", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return s, fmt.Errorf("sippbench: %s /debug/pprof/heap: %s (started without -pprof?)", p.Name, res.Status)
			}
		}
		m, err := p.Metrics()
		if err != nil {
			return s, fmt.Errorf("sippbench: %w", err)
		}
		s.Goroutines += fleet.MetricSum(m, "go_goroutines")
		s.Heap += fleet.MetricSum(m, "go_memstats_heap_inuse_bytes")
		s.Live += fleet.MetricSum(m, "go_memstats_heap_alloc_bytes")
		s.RSS += fleet.MetricSum(m, "process_resident_memory_bytes")
		s.CPU += fleet.MetricSum(m, "process_cpu_seconds_total")
	}
	return s, nil
}

// Recover waits until the nodes' goroutines (and live heap) are back to
// before, they form one ring again (an overload can make them suspect
// each other) and they are quiet.
func (n Nodes) Recover(t fleet.TB, before Sample) {
	t.Helper()
	limit := n.DrainMax
	if limit <= 0 {
		limit = 90 * time.Second
	}
	d := <-WatchDrain(n, before, limit)
	t.Logf("after the failed step: goroutines back in %.1fs, live heap in %.1fs (both: %v)",
		d.Goroutines.Seconds(), d.Heap.Seconds(), d.OK())
	n.Settle(t)
}

// Settle waits until the nodes form one ring and are quiet.
func (n Nodes) Settle(t fleet.TB) {
	t.Helper()
	fleet.Eventually(t, 30*time.Second, "ring consistent after the load", func() error { return fleet.RingConsistent(n.Procs) })
	n.Quiet(t)
}

// DrainResult is how long a system took to come back to a reading from
// before a load: goroutines and live heap (after a forced GC) each within
// their margin.
type DrainResult struct {
	Goroutines, Heap     time.Duration // time each took; the limit when not ok
	GoroutinesOK, HeapOK bool
	Last                 Sample // last reading
	Err                  error
}

// OK is whether both came back.
func (r DrainResult) OK() bool { return r.GoroutinesOK && r.HeapOK }

// DrainMargins are how far above the earlier reading counts as back:
// goroutines within 5 or 2%, live heap within 4 MiB or 10% (maps that grew
// with the load keep their capacity: after 500 calls in progress the
// nodes stay about 3 MiB above idle).
func DrainMargins(base Sample) (goroutines, heap float64) {
	return math.Max(5, 0.02*base.Goroutines), math.Max(4<<20, 0.1*base.Heap)
}

// WatchDrain reads s every 500 ms, from now, until both its goroutines
// and its live heap are back within DrainMargins of base, or limit passes.
// It runs on its own goroutine (it touches no TB) and delivers once.
func WatchDrain(s System, base Sample, limit time.Duration) <-chan DrainResult {
	ch := make(chan DrainResult, 1)
	start := time.Now()
	gm, hm := DrainMargins(base)
	go func() {
		r := DrainResult{Goroutines: limit, Heap: limit}
		for time.Since(start) < limit && !r.OK() {
			x, err := s.Sample(true)
			if err != nil {
				r.Err = err
				break
			}
			r.Last = x
			if !r.GoroutinesOK && x.Goroutines <= base.Goroutines+gm {
				r.GoroutinesOK, r.Goroutines = true, time.Since(start)
			}
			if !r.HeapOK && x.Heap <= base.Heap+hm {
				r.HeapOK, r.Heap = true, time.Since(start)
			}
			time.Sleep(500 * time.Millisecond)
		}
		ch <- r
	}()
	return ch
}

// SaveHeapProfiles writes each node's live-heap profile (/debug/pprof/heap
// after a GC) to dir as <node>.heap, for go tool pprof.
func SaveHeapProfiles(ps []*fleet.Proc, dir string) error {
	for _, p := range ps {
		if err := SaveProfile(p, "heap?gc=1", filepath.Join(dir, p.Name+".heap")); err != nil {
			return err
		}
	}
	return nil
}

// SaveProfile fetches /debug/pprof/<what> from a node (started with
// -pprof) into file, e.g. "profile?seconds=10" for 10 s of CPU profile.
func SaveProfile(p *fleet.Proc, what, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("sippbench: %w", err)
	}
	c := http.Client{Timeout: 5 * time.Minute}
	res, err := c.Get("http://" + p.Admin + "/debug/pprof/" + what)
	if err != nil {
		return fmt.Errorf("sippbench: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("sippbench: %s /debug/pprof/%s: %s", p.Name, what, res.Status)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("sippbench: %w", err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("sippbench: %w", err)
	}
	return nil
}
