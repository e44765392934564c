package calls

import (
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// loadPoint is the nodes' state with inProgress calls established.
type loadPoint struct {
	inProgress float64
	s          nodeSample
}

// longResult is the cost of calls in progress on the nodes.
type longResult struct {
	base nodeSample
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
func (b *bench) longCalls(t *testing.T, ps []*fleet.Proc, p callPath, rate int, pause, steady time.Duration) longResult {
	t.Helper()
	var r longResult
	waitQuiet(t, ps, 30*time.Second)
	r.base = mustSample(t, ps, true)
	n := int(float64(rate) * (pause + steady).Seconds())
	cb := b.startCalls(t, p, n, rate, pause, false)
	seen := ""
	for {
		select {
		case <-cb.caller.done:
		case <-time.After(50 * time.Millisecond):
			st, err := cb.caller.stats()
			if err != nil || st["CurrentTime"] == seen {
				continue
			}
			seen = st["CurrentTime"]
			c := cb.caller.counters("CurrentCall", "SuccessfulCall(C)", "FailedCall(C)")
			if c["CurrentCall"] <= 0 {
				continue
			}
			pt := loadPoint{inProgress: float64(c["CurrentCall"]), s: mustSample(t, ps, true)}
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
	o := cb.finish()
	r.ended = time.Now()
	if !o.ok {
		t.Fatalf("long calls (%d at %d/s, %s talk time): %s", n, rate, pause, o.note)
	}
	if len(r.ramp) == 0 {
		t.Fatalf("long calls: no reading while calls were being set up (talk time %s too short?)", pause)
	}
	xs := []float64{0}
	g, h, m := []float64{r.base.goroutines}, []float64{r.base.heap}, []float64{r.base.rss}
	for _, pt := range r.ramp {
		xs = append(xs, pt.inProgress)
		g, h, m = append(g, pt.s.goroutines), append(h, pt.s.heap), append(m, pt.s.rss)
	}
	r.perCall.goroutines, r.perCall.heap, r.perCall.rss = slope(xs, g), slope(xs, h), slope(xs, m)
	for _, pt := range r.ramp {
		t.Logf("ramp: %4.0f calls in progress: %5.0f goroutines, live heap %6.1f MiB, RSS %6.1f MiB (3 nodes)",
			pt.inProgress, pt.s.goroutines, pt.s.heap/(1<<20), pt.s.rss/(1<<20))
	}
	t.Logf("steady: %4.0f calls in progress: %5.0f goroutines (base %.0f)", r.steady.inProgress, r.steady.s.goroutines, r.base.goroutines)
	return r
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for i := range xs {
		n++
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
