package calls

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// nodeSample is a reading of the nodes' /metrics, summed over the nodes.
type nodeSample struct {
	at         time.Time
	goroutines float64 // go_goroutines
	heap       float64 // go_memstats_heap_inuse_bytes
	rss        float64 // process_resident_memory_bytes
	cpu        float64 // process_cpu_seconds_total
}

// sampleNodes reads every node's /metrics; with gc, it first has each
// node collect garbage (GET /debug/pprof/heap?gc=1, the nodes run with
// -pprof) so that heap is the live heap, not whatever the last cycle left.
func sampleNodes(ps []*fleet.Proc, gc bool) (nodeSample, error) {
	s := nodeSample{at: time.Now()}
	c := http.Client{Timeout: 5 * time.Second}
	for _, p := range ps {
		if gc {
			res, err := c.Get("http://" + p.Admin + "/debug/pprof/heap?gc=1")
			if err != nil {
				return s, err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return s, fmt.Errorf("%s /debug/pprof/heap: %s (started without -pprof?)", p.Name, res.Status)
			}
		}
		m, err := p.Metrics()
		if err != nil {
			return s, err
		}
		s.goroutines += fleet.MetricSum(m, "go_goroutines")
		s.heap += fleet.MetricSum(m, "go_memstats_heap_inuse_bytes")
		s.rss += fleet.MetricSum(m, "process_resident_memory_bytes")
		s.cpu += fleet.MetricSum(m, "process_cpu_seconds_total")
	}
	return s, nil
}

func mustSample(t *testing.T, ps []*fleet.Proc, gc bool) nodeSample {
	t.Helper()
	s, err := sampleNodes(ps, gc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitQuiet polls the nodes' CPU time until, over two half-second windows
// in a row, they used less than 30% of one core together, so a batch does
// not start on the backlog of the last one. (An idle fleet uses a few
// percent for its ring maintenance, more once it holds hundreds of
// thousands of registrations; a backlog keeps a node near a full core.)
// It gives up after d, saying so in the log.
func waitQuiet(t *testing.T, ps []*fleet.Proc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	prev := mustSample(t, ps, false)
	var load float64
	calm := 0
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cur := mustSample(t, ps, false)
		load = (cur.cpu - prev.cpu) / cur.at.Sub(prev.at).Seconds()
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
	t.Logf("nodes still busy after %s (%.0f%% of a core); going on", d, 100*load)
}

// drainResult is how long the nodes took to come back to a reading from
// before a load: goroutines and live heap (after a forced GC) each within
// their margin.
type drainResult struct {
	goroutines, heap     time.Duration // time each took; the limit when not ok
	goroutinesOK, heapOK bool
	last                 nodeSample // last reading
	err                  error
}

func (r drainResult) ok() bool { return r.goroutinesOK && r.heapOK }

// drainMargins are how far above the earlier reading counts as back:
// goroutines within 5 or 2%, live heap within 4 MiB or 10% (maps that grew
// with the load keep their capacity: after 500 calls in progress the
// nodes stay about 3 MiB above idle).
func drainMargins(base nodeSample) (goroutines, heap float64) {
	return math.Max(5, 0.02*base.goroutines), math.Max(4<<20, 0.1*base.heap)
}

// saveHeapProfiles writes each node's live-heap profile
// (/debug/pprof/heap after a GC) to dir as <node>.heap, for
// go tool pprof.
func saveHeapProfiles(ps []*fleet.Proc, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := http.Client{Timeout: 10 * time.Second}
	for _, p := range ps {
		res, err := c.Get("http://" + p.Admin + "/debug/pprof/heap?gc=1")
		if err != nil {
			return err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, p.Name+".heap"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// watchDrain reads the nodes every 500 ms, from now, until both their
// goroutines and their live heap are back within drainMargins of base, or
// limit passes. It runs on its own goroutine (it touches neither t nor
// the fleet) and delivers once.
func watchDrain(ps []*fleet.Proc, base nodeSample, limit time.Duration) <-chan drainResult {
	ch := make(chan drainResult, 1)
	start := time.Now()
	gm, hm := drainMargins(base)
	go func() {
		r := drainResult{goroutines: limit, heap: limit}
		for time.Since(start) < limit && !r.ok() {
			s, err := sampleNodes(ps, true)
			if err != nil {
				r.err = err
				break
			}
			r.last = s
			if !r.goroutinesOK && s.goroutines <= base.goroutines+gm {
				r.goroutinesOK, r.goroutines = true, time.Since(start)
			}
			if !r.heapOK && s.heap <= base.heap+hm {
				r.heapOK, r.heap = true, time.Since(start)
			}
			time.Sleep(500 * time.Millisecond)
		}
		ch <- r
	}()
	return ch
}
