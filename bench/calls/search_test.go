package calls

import (
	"fmt"
	"strings"
	"testing"
)

// ladder is how a rate search steps: from start, multiply the rate by
// factor while a step passes (up to max), then bisect refine times between
// the last rate that passed and the first that failed.
type ladder struct {
	start, max int
	factor     float64
	refine     int
}

// step is one rate tried.
type step struct {
	rate int
	ok   bool
	note string // why it failed, or what was worth noting (retransmissions)
}

// searchResult is the outcome of a rate search.
type searchResult struct {
	best   int  // highest rate that passed; 0 when none did
	capped bool // every rate up to max passed: best is a lower bound
	steps  []step
}

// String gives the figure as it goes in the table: "1600/s", ">= 3200/s"
// when capped, "< 100/s" when nothing passed.
func (r searchResult) String() string {
	switch {
	case r.capped:
		return fmt.Sprintf(">= %d/s", r.best)
	case r.best == 0 && len(r.steps) > 0:
		return fmt.Sprintf("< %d/s", r.steps[len(r.steps)-1].rate)
	}
	return fmt.Sprintf("%d/s", r.best)
}

// trace lists the steps as "200 ok, 800 ok, 3200 FAIL (reason)".
func (r searchResult) trace() string {
	var parts []string
	for _, s := range r.steps {
		p := fmt.Sprintf("%d ok", s.rate)
		if !s.ok {
			p = fmt.Sprintf("%d FAIL", s.rate)
		}
		if s.note != "" {
			p += " (" + s.note + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// search runs try at each rate of the ladder and returns the highest rate
// that passed. It calls try at most log_factor(max/start)+1+refine times.
func (l ladder) search(try func(rate int) (ok bool, note string)) searchResult {
	var res searchResult
	run := func(rate int) bool {
		ok, note := try(rate)
		res.steps = append(res.steps, step{rate: rate, ok: ok, note: note})
		return ok
	}
	lo, hi := 0, 0 // lo passed (0: trivially), hi failed (0: none yet)
	for rate := l.start; rate <= l.max; rate = int(float64(rate) * l.factor) {
		if !run(rate) {
			hi = rate
			break
		}
		lo = rate
		if l.factor <= 1 {
			break
		}
	}
	if hi == 0 {
		res.best, res.capped = lo, lo > 0
		return res
	}
	for i := 0; i < l.refine; i++ {
		mid := roundRate((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		if run(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	res.best = lo
	return res
}

// roundRate rounds r to two significant digits (1234 -> 1200), so the
// rates in the table read as chosen, not computed.
func roundRate(r int) int {
	unit := 1
	for r/unit >= 100 {
		unit *= 10
	}
	return (r + unit/2) / unit * unit
}

func TestLadderSearch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		l         ladder
		threshold int // rates <= threshold pass
		best      int
		capped    bool
		tries     []int
	}{
		{"doubling then bisect", ladder{100, 51200, 2, 3}, 1000, 1000,
			false, []int{100, 200, 400, 800, 1600, 1200, 1000, 1100}},
		{"capped", ladder{200, 3200, 4, 2}, 1e6, 3200, true, []int{200, 800, 3200}},
		{"first step fails", ladder{100, 1000, 2, 2}, 30, 25, false, []int{100, 50, 25}},
		{"no refine", ladder{200, 3200, 4, 0}, 900, 800, false, []int{200, 800, 3200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries []int
			res := tc.l.search(func(rate int) (bool, string) {
				tries = append(tries, rate)
				return rate <= tc.threshold, ""
			})
			if res.best != tc.best || res.capped != tc.capped || fmt.Sprint(tries) != fmt.Sprint(tc.tries) {
				t.Fatalf("best %d capped %v tries %v; want %d %v %v", res.best, res.capped, tries, tc.best, tc.capped, tc.tries)
			}
		})
	}
	if got := roundRate(1234); got != 1200 {
		t.Fatalf("roundRate(1234) = %d", got)
	}
}
