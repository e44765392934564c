package sippbench

import (
	"fmt"
	"math"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Climb searches the highest rate at which batch passes, with steps of
// step length (batch gets n = rate x step). With a system (nil: SIPp
// only), each step starts when it is quiet, a step after a failed one
// waits until it has recovered (with heap, until its live heap is back
// where it was: the failed calls' transactions are gone), and each step's
// CPU use is kept: what the system and SIPp used, by rate. A system that
// is a Quieter decides itself when it is ready for a step. When the last
// step failed, Climb returns once the system has recovered from it.
func Climb(t fleet.TB, l Ladder, step time.Duration, name string, sys System, heap bool, batch func(n, rate int) Outcome) (Result, map[int]string) {
	t.Helper()
	used := map[int]string{}
	var before *Sample // the reading before a step that failed
	res := l.Search(func(rate int) (bool, string) {
		if before != nil {
			b := *before
			if !heap {
				b.Heap = math.Inf(1)
			}
			sys.Recover(t, b)
			before = nil
		}
		var s0 Sample
		if sys != nil {
			Ready(t, sys)
			s0 = MustSample(t, sys, heap)
		}
		n := int(float64(rate) * step.Seconds())
		o := batch(n, rate)
		u := fmt.Sprintf("SIPp CPU: sender %.0f%%, answerer %.0f%%", 100*o.CallerLoad, 100*o.PhoneLoad)
		if sys != nil {
			s1 := MustSample(t, sys, false)
			cpu := s1.CPU - s0.CPU
			u = fmt.Sprintf("%s %.2f cores, %.0f µs CPU per call; ", sys, cpu/o.Wall.Seconds(), cpu/float64(n)*1e6) + u
			if !o.OK {
				before = &s0
			}
		}
		used[rate] = u
		t.Logf("%s at %d/s: ok=%v %s (%s; load %s)", name, rate, o.OK, o.Note, u, Loadavg())
		return o.OK, o.Short()
	})
	if before != nil { // the last step failed: leave the system as it was
		b := *before
		if !heap {
			b.Heap = math.Inf(1)
		}
		sys.Recover(t, b)
	}
	return res, used
}
