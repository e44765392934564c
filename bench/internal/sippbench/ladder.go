package sippbench

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Ladder is how a rate search steps: from Start, multiply the rate by
// Factor while a step passes (up to Max), then bisect Refine times between
// the last rate that passed and the first that failed.
type Ladder struct {
	Start, Max int
	Factor     float64
	Refine     int
}

// Step is one rate tried.
type Step struct {
	Rate int
	OK   bool
	Note string // why it failed, or what was worth noting (retransmissions)
}

// Result is the outcome of a rate search.
type Result struct {
	Best   int  // highest rate that passed; 0 when none did
	Capped bool // every rate up to Max passed: Best is a lower bound
	Steps  []Step
}

// String gives the figure as it goes in a table: "1600/s", ">= 3200/s"
// when capped, "< 100/s" when nothing passed.
func (r Result) String() string {
	switch {
	case r.Capped:
		return fmt.Sprintf(">= %d/s", r.Best)
	case r.Best == 0 && len(r.Steps) > 0:
		return fmt.Sprintf("< %d/s", r.Steps[len(r.Steps)-1].Rate)
	}
	return fmt.Sprintf("%d/s", r.Best)
}

// Trace lists the steps as "200 ok, 800 ok, 3200 FAIL (reason)".
func (r Result) Trace() string {
	var parts []string
	for _, s := range r.Steps {
		p := fmt.Sprintf("%d ok", s.Rate)
		if !s.OK {
			p = fmt.Sprintf("%d FAIL", s.Rate)
		}
		if s.Note != "" {
			p += " (" + s.Note + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// Search runs try at each rate of the ladder and returns the highest rate
// that passed. It calls try at most log_Factor(Max/Start)+1+Refine times.
func (l Ladder) Search(try func(rate int) (ok bool, note string)) Result {
	var res Result
	run := func(rate int) bool {
		ok, note := try(rate)
		res.Steps = append(res.Steps, Step{Rate: rate, OK: ok, Note: note})
		return ok
	}
	lo, hi := 0, 0 // lo passed (0: trivially), hi failed (0: none yet)
	for rate := l.Start; rate <= l.Max; rate = int(float64(rate) * l.Factor) {
		if !run(rate) {
			hi = rate
			break
		}
		lo = rate
		if l.Factor <= 1 {
			break
		}
	}
	if hi == 0 {
		res.Best, res.Capped = lo, lo > 0
		return res
	}
	for i := 0; i < l.Refine; i++ {
		mid := RoundRate((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		if run(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	res.Best = lo
	return res
}

// RoundRate rounds r to two significant digits (1234 -> 1200), so the
// rates in a table read as chosen, not computed.
func RoundRate(r int) int {
	unit := 1
	for r/unit >= 100 {
		unit *= 10
	}
	return (r + unit/2) / unit * unit
}

// Ratio is a.Best/b.Best for a table ("1.25x"); a bound when a search
// reached its Max (">= 1.25x", "<= 0.80x"), "-" when it means nothing.
func Ratio(a, b Result) string {
	rel := ""
	switch {
	case b.Best == 0 || (a.Capped && b.Capped):
		return "-"
	case a.Capped:
		rel = ">= "
	case b.Capped:
		rel = "<= "
	}
	return fmt.Sprintf("%s%.2fx", rel, float64(a.Best)/float64(b.Best))
}

// LadderFlags are the command-line flags of a rate search, shared by the
// benchmarks that climb: -step (how long each rate runs), -start,
// -factor, -max and -refine.
type LadderFlags struct {
	Step               *time.Duration
	start, max, refine *int
	factor             *float64
}

// NewLadderFlags registers the flags on fs with def and step as defaults.
func NewLadderFlags(fs *flag.FlagSet, def Ladder, step time.Duration) *LadderFlags {
	return &LadderFlags{
		Step:   fs.Duration("step", step, "length of one rate step (calls or REGISTERs at that rate)"),
		start:  fs.Int("start", def.Start, "first rate of a search, per second"),
		factor: fs.Float64("factor", def.Factor, "rate multiplier between steps while they pass"),
		max:    fs.Int("max", def.Max, "highest rate tried, per second"),
		refine: fs.Int("refine", def.Refine, "bisection steps after the first failure"),
	}
}

// Ladder returns the search the flags describe.
func (f *LadderFlags) Ladder() Ladder {
	return Ladder{Start: *f.start, Max: *f.max, Factor: *f.factor, Refine: *f.refine}
}

// Abs returns the absolute path of a file given relative to the test's
// package directory (a scenario, a configuration).
func Abs(t fleet.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
