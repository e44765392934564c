package churn

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one churn run.
type Report struct {
	Config       Config
	Registration RegistrationStats
	// LoadStart is when the call load began; LoadTook how long it ran.
	LoadStart time.Time
	LoadTook  time.Duration
	Calls     CallStats
	Events    []EventResult
	// FinalSettle is how long the fleet took, after the load, to be
	// consistent for StableFor (FinalSettleErr when it was not).
	FinalSettle    time.Duration
	FinalSettleErr string
	Final          FinalCheck
}

// RegistrationsLost is the number of AORs no live node holds at the end.
func (r *Report) RegistrationsLost() int { return r.Final.Lost }

// CallsMissingRegistration counts calls answered 404 or 480 during the
// run: the callee's registration (or its binding) was not found.
func (r *Report) CallsMissingRegistration() int {
	return r.Calls.ByReason[Reason404] + r.Calls.ByReason[Reason480]
}

// Stats is min / median / max of a set of durations.
type Stats struct {
	N                int
	Min, Median, Max time.Duration
	// Never counts the samples that did not become consistent at all.
	Never int
}

func statsOf(ds []time.Duration) Stats {
	var s Stats
	var ok []time.Duration
	for _, d := range ds {
		if d < 0 {
			s.Never++
			continue
		}
		ok = append(ok, d)
	}
	s.N = len(ok)
	if len(ok) == 0 {
		return s
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
	s.Min, s.Median, s.Max = ok[0], ok[len(ok)/2], ok[len(ok)-1]
	return s
}

func (s Stats) String() string {
	if s.N == 0 {
		return fmt.Sprintf("n=0 (never: %d)", s.Never)
	}
	out := fmt.Sprintf("min %.2fs  median %.2fs  max %.2fs  (n=%d)", s.Min.Seconds(), s.Median.Seconds(), s.Max.Seconds(), s.N)
	if s.Never > 0 {
		out += fmt.Sprintf(", never consistent: %d", s.Never)
	}
	return out
}

// DNSAfterKill is the DNS consistency time after the kills of events
// that took a representative (the others were consistent at once).
func (r *Report) DNSAfterKill(repsOnly bool) Stats {
	var ds []time.Duration
	for _, ev := range r.Events {
		if repsOnly && !anyTrue(ev.Reps) {
			continue
		}
		ds = append(ds, ev.AfterKill.DNS)
	}
	return statsOf(ds)
}

// DNSAfterRestart is the DNS consistency time after the restarts.
func (r *Report) DNSAfterRestart() Stats {
	var ds []time.Duration
	for _, ev := range r.Events {
		ds = append(ds, ev.AfterRestart.DNS)
	}
	return statsOf(ds)
}

func (r *Report) afterKill(get func(settle) time.Duration) Stats {
	var ds []time.Duration
	for _, ev := range r.Events {
		ds = append(ds, get(ev.AfterKill))
	}
	return statsOf(ds)
}

func (r *Report) afterRestart(get func(settle) time.Duration) Stats {
	var ds []time.Duration
	for _, ev := range r.Events {
		ds = append(ds, get(ev.AfterRestart))
	}
	return statsOf(ds)
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// QuietFailures counts the failed calls that no event explains (outside
// every window from a kill until settled).
func (r *Report) QuietFailures() []FailedCall {
	var out []FailedCall
	for _, f := range r.Calls.Failures {
		if f.Quiet {
			out = append(out, f)
		}
	}
	return out
}

// String renders the report for people.
func (r *Report) String() string {
	c := r.Config
	var b strings.Builder
	pct := func(n, of int) string { return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(max(of, 1))) }
	fmt.Fprintf(&b, "churn run: %d nodes, %d AORs, replicas %d, reps %d, %d calls/s, seed %d\n",
		c.Nodes, c.AORs, c.Replicas, c.Reps, c.CallRate, c.Seed)
	rg := r.Registration
	fmt.Fprintf(&b, "registration: %d AORs through %d nodes in %.1fs (%.0f/s), %d failed\n",
		rg.AORs, c.Nodes, rg.Took.Seconds(), float64(rg.OK)/max(rg.Took.Seconds(), 1e-9), rg.Failed)
	cs := r.Calls
	fmt.Fprintf(&b, "call load: %.0fs, %d chunks (%d not sent: DNS named no server)\n", r.LoadTook.Seconds(), cs.Chunks, cs.NotSent)
	fmt.Fprintf(&b, "  calls attempted %d, succeeded %d, failed %d (%s)\n", cs.Attempted, cs.Succeeded, cs.Failed, pct(cs.Failed, cs.Attempted))
	fmt.Fprintf(&b, "  baseline (calls over before the first event): attempted %d, failed %d\n", cs.BaselineAttempted, cs.BaselineFailed)
	modes := make([]string, 0, len(cs.ByMode))
	for m := range cs.ByMode {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	for _, m := range modes {
		v := cs.ByMode[m]
		what := map[string]string{"cscf": "sent where DNS (SRV, A) named", "node": "sent to a random live node"}[m]
		fmt.Fprintf(&b, "  %-31s attempted %6d, failed %5d (%s)\n", what, v[0], v[1], pct(v[1], v[0]))
	}
	reasons := make([]string, 0, len(cs.ByReason))
	for k := range cs.ByReason {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool { return cs.ByReason[reasons[i]] > cs.ByReason[reasons[j]] })
	for _, k := range reasons {
		fmt.Fprintf(&b, "  failed: %-52s %5d\n", k, cs.ByReason[k])
	}
	fmt.Fprintf(&b, "  failed outside every event window (unexplained): %d\n", len(r.QuietFailures()))
	listed := 0
	for _, f := range cs.Failures {
		if f.Reason == ReasonDeadTarget || listed == 40 {
			continue
		}
		listed++
		quiet := ""
		if f.Quiet {
			quiet = " (outside every event window)"
		}
		fmt.Fprintf(&b, "    t=%6.2fs chunk %d to %s: %s: %s %s%s\n", f.At.Sub(r.LoadStart).Seconds(), f.Chunk, f.Target, f.Reason, f.Detail, f.Callee, quiet)
	}
	fmt.Fprintf(&b, "events: %d\n", len(r.Events))
	for _, ev := range r.Events {
		fmt.Fprintf(&b, "  %d: %s\n", ev.N, ev.Line(r.LoadStart))
	}
	fmt.Fprintf(&b, "DNS consistent after a kill taking a representative: %s\n", r.DNSAfterKill(true))
	fmt.Fprintf(&b, "DNS consistent after any kill:                       %s\n", r.DNSAfterKill(false))
	fmt.Fprintf(&b, "DNS consistent after a restart:                      %s\n", r.DNSAfterRestart())
	fmt.Fprintf(&b, "ring consistent after a kill / restart:              %s / %s\n",
		r.afterKill(func(s settle) time.Duration { return s.Ring }), r.afterRestart(func(s settle) time.Duration { return s.Ring }))
	fmt.Fprintf(&b, "3 copies of every record after a kill / restart:     %s / %s\n",
		r.afterKill(func(s settle) time.Duration { return s.Copies }), r.afterRestart(func(s settle) time.Duration { return s.Copies }))
	settled := fmt.Sprintf("%.1fs", r.FinalSettle.Seconds())
	if r.FinalSettleErr != "" {
		settled = "NOT settled: " + r.FinalSettleErr
	}
	fmt.Fprintf(&b, "after the load: consistent for %s after %s\n", c.StableFor, settled)
	f := r.Final
	fmt.Fprintf(&b, "final check (%d admin requests, %.1fs): %d of %d AORs OK; registrations lost %d; fewer than %d copies %d, more %d, misplaced %d; home/replica not live %d, lookup != ring %d; AORs by copies %v\n",
		f.Requests, f.Took.Seconds(), f.OK, f.AORs, f.Lost, c.Replicas, f.Under, f.Over, f.Misplaced, f.HomeNotLive, f.LookupMismatch, f.Copies)
	for _, e := range f.Examples {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}
