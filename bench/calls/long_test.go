package calls

import (
	"testing"
	"time"

	"github.com/dsn-ims/dsn/bench/internal/sippbench"
	"github.com/dsn-ims/dsn/deploy/fleet"
)

// loadPoint is the nodes' state with inProgress calls established.
type loadPoint struct {
	inProgress float64
	s          sippbench.Sample
}

// longResult is the cost of calls in progress on the nodes.
type longResult struct {
	base sippbench.Sample
	// ramp are readings taken while calls were being set up and none had
	// ended yet: all the state on the nodes is for calls in progress.
	ramp []loadPoint
	// steady is the last reading before the caller stopped: calls in
	// progress plus the transactions of ended calls still on their timers.
	steady loadPoint
	// perCall is the least-squares slope over base and ramp.
	perCall struct{ goroutines, heap, rss float64 }
	ended   time.Time // when the last call ended
}

// longCalls holds calls of pause talk time at rate for pause+steady along
// p (through the nodes ps) and reads the nodes' /metrics each time SIPp
// writes its statistics (once a second), with a forced GC so the heap is
// the live heap.
func longCalls(t *testing.T, b *sippbench.Bench, ps []*fleet.Proc, p sippbench.CallPath, rate int, pause, steady time.Duration) longResult {
	t.Helper()
	var r longResult
	nodes := system(ps)
	sippbench.WaitQuiet(t, nodes, 30*time.Second)
	r.base = sippbench.MustSample(t, nodes, true)
	n := int(float64(rate) * (pause + steady).Seconds())
	cb := b.StartCalls(t, p, n, rate, pause, false)
	seen := ""
	for {
		select {
		case <-cb.Caller.Done():
		case <-time.After(50 * time.Millisecond):
			st, err := cb.Caller.Stats()
			if err != nil || st["CurrentTime"] == seen {
				continue
			}
			seen = st["CurrentTime"]
			c := cb.Caller.Counters("CurrentCall", "SuccessfulCall(C)", "FailedCall(C)")
			if c["CurrentCall"] <= 0 {
				continue
			}
			pt := loadPoint{inProgress: float64(c["CurrentCall"]), s: sippbench.MustSample(t, nodes, true)}
			if c["SuccessfulCall(C)"] == 0 && c["FailedCall(C)"] == 0 {
				r.ramp = append(r.ramp, pt)
			}
			if pt.inProgress >= 0.9*float64(rate)*pause.Seconds() {
				r.steady = pt
			}
			continue
		}
		break
	}
	o := cb.Finish()
	r.ended = time.Now()
	if !o.OK {
		t.Fatalf("long calls (%d at %d/s, %s talk time): %s", n, rate, pause, o.Note)
	}
	if len(r.ramp) == 0 {
		t.Fatalf("long calls: no reading while calls were being set up (talk time %s too short?)", pause)
	}
	xs := []float64{0}
	g, h, m := []float64{r.base.Goroutines}, []float64{r.base.Heap}, []float64{r.base.RSS}
	for _, pt := range r.ramp {
		xs = append(xs, pt.inProgress)
		g, h, m = append(g, pt.s.Goroutines), append(h, pt.s.Heap), append(m, pt.s.RSS)
	}
	r.perCall.goroutines, r.perCall.heap, r.perCall.rss = sippbench.Slope(xs, g), sippbench.Slope(xs, h), sippbench.Slope(xs, m)
	for _, pt := range r.ramp {
		t.Logf("ramp: %4.0f calls in progress: %5.0f goroutines, live heap %6.1f MiB, RSS %6.1f MiB (3 nodes)",
			pt.inProgress, pt.s.Goroutines, pt.s.Heap/(1<<20), pt.s.RSS/(1<<20))
	}
	t.Logf("steady: %4.0f calls in progress: %5.0f goroutines (base %.0f)", r.steady.inProgress, r.steady.s.Goroutines, r.base.Goroutines)
	return r
}
