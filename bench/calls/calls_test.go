// Package calls benchmarks calls and registrations through real dsn-node
// processes with real SIPp on loopback (issue 3). Every figure stands next
// to a baseline measured in the same run, because the machine is shared
// and noisy: SIPp calling SIPp directly, a SIPp registrar stub, a one-node
// ring.
//
//	bench/calls/run.sh        # the full run (10 s rate steps, bisection, 10 s calls)
//
// CI runs the short default: 1 s rate steps, three rates, no bisection,
// 3 s calls, 50 calls per latency path.
package calls

import (
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

var (
	stepLen  = flag.Duration("step", time.Second, "length of one rate step (calls or REGISTERs at that rate)")
	start    = flag.Int("start", 100, "first rate of a search, per second")
	factor   = flag.Float64("factor", 4, "rate multiplier between steps while they pass")
	maxRate  = flag.Int("max", 1600, "highest rate tried, per second")
	refine   = flag.Int("refine", 0, "bisection steps after the first failure")
	pause    = flag.Duration("pause", 100*time.Millisecond, "talk time of the calls in rate steps and latency runs (SIPp -d)")
	latCalls = flag.Int("latency-calls", 50, "calls per path per latency round")
	latRate  = flag.Int("latency-rate", 50, "calls/s of the latency runs")
	latRound = flag.Int("latency-rounds", 1, "latency rounds (the paths take turns, to spread drift over all of them)")
	regUsers = flag.Int("register-users", 1000, "registered users: the rings hold them all before the REGISTER steps, which refresh them")
	longRate = flag.Int("long-rate", 50, "calls/s of the long-call run")
	longTalk = flag.Duration("long-pause", 3*time.Second, "talk time of the long calls")
	longHold = flag.Duration("long-steady", 2*time.Second, "how long the long-call load goes on after the first calls end")
	drainMax = flag.Duration("drain-max", 90*time.Second, "the nodes must be back to their goroutine count within this after the load")
	heapDir  = flag.String("heap-profiles", "", "directory to save the nodes' live-heap profiles in, once they drained after the long calls")
)

const (
	domain      = "dsn.calls"
	uasScenario = "../../sip/proxy/testdata/sipp/uas.xml"
	regScenario = "../../sip/proxy/testdata/sipp/register.xml"
)

// run is one benchmark run: what the parts share.
type run struct {
	t   *testing.T
	b   *bench
	l   ladder
	tab table
}

// userHomedOn finds a user whose AOR's home node is h (asking via).
func userHomedOn(t *testing.T, via, h *fleet.Proc, prefix string) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		u := prefix + strconv.Itoa(i)
		var res struct {
			Home struct {
				Name string `json:"name"`
			} `json:"home"`
		}
		if code, err := via.GetJSON("/v1/lookup?aor=sip:"+u+"@"+domain, &res); err != nil || code != 200 {
			t.Fatalf("lookup %s: %d %v", u, code, err)
		}
		if res.Home.Name == h.Name {
			return u
		}
	}
	t.Fatalf("no user homed on %s", h.Name)
	return ""
}

// startFleet starts n nodes on 127.0.0.<ip0>.. at info level (debug
// logging would cost more than the proxying) with -pprof for forced GCs.
func startFleet(t *testing.T, prefix string, ip0, n int) []*fleet.Proc {
	t.Helper()
	f := fleet.New(t, domain)
	var ps []*fleet.Proc
	for i := 0; i < n; i++ {
		var join []string
		if i > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, f.Start(fmt.Sprintf("%s%d", prefix, i+1), fmt.Sprintf("127.0.0.%d", ip0+i), join,
			"-log-level", "info", "-pprof"))
	}
	fleet.Eventually(t, 15*time.Second, "ring formed", func() error { return fleet.RingConsistent(ps) })
	for _, p := range ps {
		t.Logf("%s: SIP %s, admin %s", p.Name, p.SIP, p.Admin)
	}
	return ps
}

// loadavg is the machine's 1-minute load average, for the notes: other
// work on the machine shows in it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func TestCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	r := &run{t: t, b: &bench{sipp: fleet.RequireTool(t, "sipp")},
		l: ladder{start: *start, max: *maxRate, factor: *factor, refine: *refine}}
	r.b.users = fleet.WriteUsers(t, t.TempDir(), domain, *regUsers)
	t.Cleanup(func() { t.Log("\n" + r.tab.String()) })
	load0 := loadavg()

	// The fleet of issue 3: the phone registers through A, the caller
	// sends to B, the AOR's home is H. A second phone, registered straight
	// at H, gives the one- and two-proxy paths.
	ps := startFleet(t, "cn", 41, 3)
	A, B, H := ps[0], ps[1], ps[2]
	userA, userH := userHomedOn(t, A, H, "bob"), userHomedOn(t, A, H, "carol")
	phoneA := fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))
	phoneH := fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))
	for _, reg := range []struct {
		via         *fleet.Proc
		user, phone string
	}{{A, userA, phoneA}, {H, userH, phoneH}} {
		fleet.SIPp(t, reg.via.SIP, "-sf", regScenario, "-i", "127.0.0.1", "-p", portOf(t, reg.phone),
			"-s", reg.user, "-key", "domain", domain, "-m", "1")
	}
	timed, untimed := scenario(t, "testdata/uac_timed.xml"), scenario(t, "testdata/uac_direct.xml")
	paths := []callPath{
		{name: "direct", scenario: untimed, target: phoneH, user: userH, phone: phoneH},
		{name: "H (1 proxy)", proxies: 1, scenario: timed, target: H.SIP, user: userH, phone: phoneH},
		{name: "B -> H (2 proxies)", proxies: 2, scenario: timed, target: B.SIP, user: userH, phone: phoneH},
		{name: "B -> H -> A (3 proxies)", proxies: 3, scenario: timed, target: B.SIP, user: userA, phone: phoneA},
	}
	proxied := paths[3]
	direct := callPath{name: "direct", scenario: untimed, user: userH,
		phone: fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))}
	direct.target = direct.phone

	// 5. Goroutines and memory per call in progress, on the fresh fleet.
	// The nodes then drain (timers only, no CPU to speak of) while the
	// SIPp-only and one-node baselines run: those do not touch them.
	long := r.b.longCalls(t, ps, proxied, *longRate, *longTalk, *longHold)
	drained := watchDrain(ps, long.base, *drainMax)

	// 1. The SIPp ceiling for calls: caller -> phone, nothing in between.
	baseline, baseUsed := r.callLadder(direct, nil)
	r.ladderRow(secRate, "calls/s at 0 failures, SIPp caller -> SIPp phone (baseline)", baseline, baseUsed, "1")

	// 4, baselines: a SIPp registrar stub, and a one-node ring.
	regStub, stubUsed := r.regLadder("stub", fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1")), true, nil)
	one := startFleet(t, "solo", 44, 1)
	reg1, reg1Used := r.regLadder("1 node", one[0].SIP, false, one)
	one[0].Kill()

	d := <-drained // the watch started when the long calls ended
	r.drainRows(long, d)
	if *heapDir != "" {
		if err := saveHeapProfiles(ps, *heapDir); err != nil {
			t.Errorf("heap profiles: %v", err)
		}
	}

	// 3. Setup latency per path at a moderate rate.
	r.latency(ps, paths)

	// 2. The proxy path's ceiling.
	prox, proxUsed := r.callLadder(proxied, ps)
	r.ladderRow(secRate, "calls/s at 0 failures, caller -> B -> H -> A -> phone", prox, proxUsed, ratio(prox, baseline))
	r.recover(ps)

	// 4. REGISTER/s against one node of the three-node ring (replicas 3).
	reg3, reg3Used := r.regLadder("3 nodes", B.SIP, false, ps)

	r.ladderRow(secRegister, "REGISTER/s at 0 failures, SIPp -> SIPp registrar stub (baseline)", regStub, stubUsed, "1")
	r.ladderRow(secRegister, "REGISTER/s at 0 failures, 1-node ring", reg1, reg1Used, ratio(reg1, regStub))
	r.ladderRow(secRegister, "REGISTER/s at 0 failures, one node of a 3-node ring, replicas 3", reg3, reg3Used,
		ratio(reg3, regStub)+" ("+ratio(reg3, reg1)+" of 1 node)")
	r.tab.add(secMachine, "machine load average (1 min) at start / end", load0+" / "+loadavg(), "", "other work on the shared machine")
}

// ratio is a/b for the table; a bound when a search reached -max.
func ratio(a, b searchResult) string {
	rel := ""
	switch {
	case b.best == 0 || (a.capped && b.capped):
		return "-"
	case a.capped:
		rel = ">= "
	case b.capped:
		rel = "<= "
	}
	return fmt.Sprintf("%s%.2fx", rel, float64(a.best)/float64(b.best))
}

// ladder searches the highest rate at which batch passes. With nodes,
// each step starts on quiet nodes, a step after a failed one waits until
// the nodes have recovered (with heap, until their live heap is back where
// it was: the failed calls' transactions are gone), and each step's CPU
// use is kept: what the nodes and SIPp used, by rate.
func (r *run) ladder(name string, nodes []*fleet.Proc, heap bool, batch func(n, rate int) outcome) (searchResult, map[int]string) {
	t := r.t
	used := map[int]string{}
	var before *nodeSample // the reading before a step that failed
	res := r.l.search(func(rate int) (bool, string) {
		if before != nil {
			r.settle(nodes, *before, heap)
			before = nil
		}
		var s0 nodeSample
		if nodes != nil {
			waitQuiet(t, nodes, 30*time.Second)
			s0 = mustSample(t, nodes, heap)
		}
		n := int(float64(rate) * stepLen.Seconds())
		o := batch(n, rate)
		u := fmt.Sprintf("SIPp CPU: sender %.0f%%, answerer %.0f%%", 100*o.callerLoad, 100*o.phoneLoad)
		if nodes != nil {
			s1 := mustSample(t, nodes, false)
			cpu := s1.cpu - s0.cpu
			u = fmt.Sprintf("nodes %.2f cores, %.0f µs CPU per call; ", cpu/o.wall.Seconds(), cpu/float64(n)*1e6) + u
			if !o.ok {
				before = &s0
			}
		}
		used[rate] = u
		t.Logf("%s at %d/s: ok=%v %s (%s; load %s)", name, rate, o.ok, o.note, u, loadavg())
		return o.ok, o.short()
	})
	return res, used
}

// callLadder searches the highest call rate along p with 0 failures.
func (r *run) callLadder(p callPath, nodes []*fleet.Proc) (searchResult, map[int]string) {
	return r.ladder("calls "+p.name, nodes, true, func(n, rate int) outcome {
		return r.b.calls(r.t, p, n, rate, *pause, false)
	})
}

// regLadder searches the highest REGISTER rate against target with 0
// failures (a SIPp stub listens there with stub). A ring first gets every
// user registered (at 400/s), so each step refreshes a registered
// population of -register-users AORs and the ring holds the same number
// of bindings throughout.
func (r *run) regLadder(name, target string, stub bool, nodes []*fleet.Proc) (searchResult, map[int]string) {
	port := fleet.FreeUDPPort(r.t, "127.0.0.1")
	if nodes != nil {
		if o := r.b.registers(r.t, target, false, port, *regUsers, 400); !o.callsOK {
			r.t.Fatalf("registering %d users at 400/s with %s: %s", *regUsers, name, o.note)
		}
	}
	return r.ladder("REGISTER "+name, nodes, false, func(n, rate int) outcome {
		return r.b.registers(r.t, target, stub, port, n, rate)
	})
}

// settle waits, after a failed step, until the nodes' goroutines (and
// with heap their live heap) are back to before, and they form one ring
// again and are quiet.
func (r *run) settle(nodes []*fleet.Proc, before nodeSample, heap bool) {
	if !heap {
		before.heap = math.Inf(1)
	}
	d := <-watchDrain(nodes, before, *drainMax)
	r.t.Logf("after the failed step: goroutines back in %.1fs, live heap in %.1fs (both: %v)",
		d.goroutines.Seconds(), d.heap.Seconds(), d.ok())
	r.recover(nodes)
}

// recover waits until the nodes form one ring (an overload can make them
// suspect each other) and are quiet.
func (r *run) recover(nodes []*fleet.Proc) {
	fleet.Eventually(r.t, 30*time.Second, "ring consistent after the load", func() error { return fleet.RingConsistent(nodes) })
	waitQuiet(r.t, nodes, 30*time.Second)
}

// row is a ladder's line of the table: the figure, its ratio to the
// baseline, the steps, and what the nodes and SIPp used at the best rate.
func (r *run) ladderRow(section int, what string, res searchResult, used map[int]string, ratio string) {
	note := res.trace()
	if u := used[res.best]; u != "" {
		note += fmt.Sprintf(". At %d/s: %s", res.best, u)
	}
	r.tab.add(section, what, res.String(), ratio, note)
}

// latency measures INVITE -> 200 along each path at a moderate rate; the
// paths take turns, round after round, so drift of the machine spreads
// over all of them.
func (r *run) latency(ps []*fleet.Proc, paths []callPath) {
	t := r.t
	setup := make([][]float64, len(paths))
	for round := 0; round < *latRound; round++ {
		for i, p := range paths {
			waitQuiet(t, ps, 30*time.Second)
			o := r.b.calls(t, p, *latCalls, *latRate, *pause, true)
			if !o.callsOK {
				t.Errorf("latency run %s at %d/s: %s", p.name, *latRate, o.note)
			}
			setup[i] = append(setup[i], o.setup...)
		}
	}
	if len(setup[0]) == 0 {
		t.Errorf("direct: no setup times logged")
		return
	}
	d50, d99 := percentile(setup[0], 0.5), percentile(setup[0], 0.99)
	for i, p := range paths {
		if len(setup[i]) == 0 {
			t.Errorf("%s: no setup times logged", p.name)
			continue
		}
		p50, p99 := percentile(setup[i], 0.5), percentile(setup[i], 0.99)
		fig := fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", p50, p99)
		rat, note := "1", fmt.Sprintf("n=%d", len(setup[i]))
		if p.proxies > 0 {
			rat = fmt.Sprintf("%.2fx / %.2fx", p50/d50, p99/d99)
			note = fmt.Sprintf("added per proxy: p50 %+.0f µs, p99 %+.0f µs; n=%d",
				(p50-d50)/float64(p.proxies), (p99-d99)/float64(p.proxies), len(setup[i]))
		}
		r.tab.add(secLatency, fmt.Sprintf("call setup INVITE -> 200 at %d/s, %s", *latRate, p.name), fig, rat, note)
	}
}

// drainRows reports the cost of calls in progress and the way back.
func (r *run) drainRows(long longResult, d drainResult) {
	t := r.t
	gm, hm := drainMargins(long.base)
	if d.err != nil {
		t.Fatalf("reading the nodes after the load: %v", d.err)
	}
	if !d.goroutinesOK {
		t.Errorf("goroutines not back to %.0f (+%.0f) within %s after the load: %.0f", long.base.goroutines, gm, *drainMax, d.last.goroutines)
	}
	last := long.ramp[len(long.ramp)-1]
	r.tab.add(secPerCall, fmt.Sprintf("goroutines per call in progress (3 nodes, %s calls at %d/s)", *longTalk, *longRate),
		fmt.Sprintf("%.2f", long.perCall.goroutines), "",
		fmt.Sprintf("%.0f idle, %.0f at %.0f calls in progress, %.0f at %.0f calls once the first calls had ended",
			long.base.goroutines, last.s.goroutines, last.inProgress, long.steady.s.goroutines, long.steady.inProgress))
	r.tab.add(secPerCall, "live heap per call in progress (3 nodes, after forced GC)", fmt.Sprintf("%.1f KiB", long.perCall.heap/1024), "",
		fmt.Sprintf("RSS %.1f KiB per call; live heap %.1f MiB idle, %.1f MiB at %.0f calls, %.1f MiB at the end of the load",
			long.perCall.rss/1024, long.base.heap/(1<<20), last.s.heap/(1<<20), last.inProgress, long.steady.s.heap/(1<<20)))
	back := func(took time.Duration, ok bool) string {
		if !ok {
			return "not within " + drainMax.String()
		}
		return fmt.Sprintf("%.1f s", took.Seconds())
	}
	r.tab.add(secPerCall, "goroutines back to the idle count after the load", back(d.goroutines, d.goroutinesOK), "",
		fmt.Sprintf("within %.0f of %.0f", gm, long.base.goroutines))
	r.tab.add(secPerCall, "live heap back to the idle size after the load", back(d.heap, d.heapOK), "",
		fmt.Sprintf("within %.1f MiB of %.1f MiB; %.1f MiB at the last reading", hm/(1<<20), long.base.heap/(1<<20), d.last.heap/(1<<20)))
}

// percentile returns the q-quantile of xs (nearest rank).
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Sections of the results table, in the order they are printed.
const (
	secRate = iota
	secLatency
	secRegister
	secPerCall
	secMachine
)

// table is the results table, in Markdown, rows grouped by section in
// the order they were added.
type table struct{ rows []row }

type row struct {
	section                   int
	what, figure, ratio, note string
}

func (tb *table) add(section int, what, figure, ratio, note string) {
	tb.rows = append(tb.rows, row{section, what, figure, ratio, note})
}

func (tb *table) String() string {
	rows := append([]row(nil), tb.rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].section < rows[j].section })
	var sb strings.Builder
	sb.WriteString("| what | figure | vs baseline | notes |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", r.what, r.figure, r.ratio, r.note)
	}
	return sb.String()
}
