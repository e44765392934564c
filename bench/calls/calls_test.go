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
	"strconv"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/bench/internal/sippbench"
	"github.com/dsn-ims/dsn/deploy/fleet"
)

var (
	ladder   = sippbench.NewLadderFlags(flag.CommandLine, sippbench.Ladder{Start: 100, Factor: 4, Max: 1600}, time.Second)
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
	b   *sippbench.Bench
	l   sippbench.Ladder
	tab sippbench.Table
}

// system is the nodes as a sippbench.System; nil for none (a SIPp-only
// baseline).
func system(ps []*fleet.Proc) sippbench.System {
	if ps == nil {
		return nil
	}
	return sippbench.Nodes{Procs: ps, DrainMax: *drainMax}
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

func TestCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	r := &run{t: t, b: &sippbench.Bench{SIPp: fleet.RequireTool(t, "sipp"), Domain: domain,
		UAS: sippbench.Abs(t, uasScenario), RegisterUsers: sippbench.Abs(t, "testdata/register_users.xml"),
		RegistrarStub: sippbench.Abs(t, "testdata/registrar_stub.xml"), Users: fleet.WriteUsers(t, t.TempDir(), domain, *regUsers)},
		l: ladder.Ladder()}
	if err := r.b.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { t.Log("\n" + r.tab.String()) })
	load0 := sippbench.Loadavg()

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
		fleet.SIPp(t, reg.via.SIP, "-sf", regScenario, "-i", "127.0.0.1", "-p", sippbench.PortOf(t, reg.phone),
			"-s", reg.user, "-key", "domain", domain, "-m", "1")
	}
	timed, untimed := sippbench.Abs(t, "testdata/uac_timed.xml"), sippbench.Abs(t, "testdata/uac_direct.xml")
	paths := []sippbench.CallPath{
		{Name: "direct", Scenario: untimed, Target: phoneH, User: userH, Phone: phoneH},
		{Name: "H (1 proxy)", Proxies: 1, Scenario: timed, Target: H.SIP, User: userH, Phone: phoneH},
		{Name: "B -> H (2 proxies)", Proxies: 2, Scenario: timed, Target: B.SIP, User: userH, Phone: phoneH},
		{Name: "B -> H -> A (3 proxies)", Proxies: 3, Scenario: timed, Target: B.SIP, User: userA, Phone: phoneA},
	}
	proxied := paths[3]
	direct := sippbench.CallPath{Name: "direct", Scenario: untimed, User: userH,
		Phone: fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))}
	direct.Target = direct.Phone

	// 5. Goroutines and memory per call in progress, on the fresh fleet.
	// The nodes then drain (timers only, no CPU to speak of) while the
	// SIPp-only and one-node baselines run: those do not touch them.
	long := longCalls(t, r.b, ps, proxied, *longRate, *longTalk, *longHold)
	drained := sippbench.WatchDrain(system(ps), long.base, *drainMax)

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
		if err := sippbench.SaveHeapProfiles(ps, *heapDir); err != nil {
			t.Errorf("heap profiles: %v", err)
		}
	}

	// 3. Setup latency per path at a moderate rate.
	r.latency(ps, paths)

	// 2. The proxy path's ceiling.
	prox, proxUsed := r.callLadder(proxied, ps)
	r.ladderRow(secRate, "calls/s at 0 failures, caller -> B -> H -> A -> phone", prox, proxUsed, sippbench.Ratio(prox, baseline))
	sippbench.Nodes{Procs: ps}.Settle(t)

	// 4. REGISTER/s against one node of the three-node ring (replicas 3).
	reg3, reg3Used := r.regLadder("3 nodes", B.SIP, false, ps)

	r.ladderRow(secRegister, "REGISTER/s at 0 failures, SIPp -> SIPp registrar stub (baseline)", regStub, stubUsed, "1")
	r.ladderRow(secRegister, "REGISTER/s at 0 failures, 1-node ring", reg1, reg1Used, sippbench.Ratio(reg1, regStub))
	r.ladderRow(secRegister, "REGISTER/s at 0 failures, one node of a 3-node ring, replicas 3", reg3, reg3Used,
		sippbench.Ratio(reg3, regStub)+" ("+sippbench.Ratio(reg3, reg1)+" of 1 node)")
	r.tab.Add(secMachine, "machine load average (1 min) at start / end", load0+" / "+sippbench.Loadavg(), "", "other work on the shared machine")
}

// callLadder searches the highest call rate along p with 0 failures.
func (r *run) callLadder(p sippbench.CallPath, nodes []*fleet.Proc) (sippbench.Result, map[int]string) {
	return sippbench.Climb(r.t, r.l, *ladder.Step, "calls "+p.Name, system(nodes), true, func(n, rate int) sippbench.Outcome {
		return r.b.Calls(r.t, p, n, rate, *pause, false)
	})
}

// regLadder searches the highest REGISTER rate against target with 0
// failures (a SIPp stub listens there with stub). A ring first gets every
// user registered (at 400/s), so each step refreshes a registered
// population of -register-users AORs and the ring holds the same number
// of bindings throughout.
func (r *run) regLadder(name, target string, stub bool, nodes []*fleet.Proc) (sippbench.Result, map[int]string) {
	port := fleet.FreeUDPPort(r.t, "127.0.0.1")
	if nodes != nil {
		if o := r.b.Registers(r.t, target, false, port, *regUsers, 400); !o.CallsOK {
			r.t.Fatalf("registering %d users at 400/s with %s: %s", *regUsers, name, o.Note)
		}
	}
	return sippbench.Climb(r.t, r.l, *ladder.Step, "REGISTER "+name, system(nodes), false, func(n, rate int) sippbench.Outcome {
		return r.b.Registers(r.t, target, stub, port, n, rate)
	})
}

// ladderRow is a ladder's line of the table: the figure, its ratio to the
// baseline, the steps, and what the nodes and SIPp used at the best rate.
func (r *run) ladderRow(section int, what string, res sippbench.Result, used map[int]string, ratio string) {
	note := res.Trace()
	if u := used[res.Best]; u != "" {
		note += fmt.Sprintf(". At %d/s: %s", res.Best, u)
	}
	r.tab.Add(section, what, res.String(), ratio, note)
}

// latency measures INVITE -> 200 along each path at a moderate rate; the
// paths take turns, round after round, so drift of the machine spreads
// over all of them.
func (r *run) latency(ps []*fleet.Proc, paths []sippbench.CallPath) {
	t := r.t
	nodes := system(ps)
	setup := make([][]float64, len(paths))
	for round := 0; round < *latRound; round++ {
		for i, p := range paths {
			sippbench.WaitQuiet(t, nodes, 30*time.Second)
			o := r.b.Calls(t, p, *latCalls, *latRate, *pause, true)
			if !o.CallsOK {
				t.Errorf("latency run %s at %d/s: %s", p.Name, *latRate, o.Note)
			}
			setup[i] = append(setup[i], o.Setup...)
		}
	}
	if len(setup[0]) == 0 {
		t.Errorf("direct: no setup times logged")
		return
	}
	d50, d99 := sippbench.Percentile(setup[0], 0.5), sippbench.Percentile(setup[0], 0.99)
	for i, p := range paths {
		if len(setup[i]) == 0 {
			t.Errorf("%s: no setup times logged", p.Name)
			continue
		}
		p50, p99 := sippbench.Percentile(setup[i], 0.5), sippbench.Percentile(setup[i], 0.99)
		fig := fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", p50, p99)
		rat, note := "1", fmt.Sprintf("n=%d", len(setup[i]))
		if p.Proxies > 0 {
			rat = fmt.Sprintf("%.2fx / %.2fx", p50/d50, p99/d99)
			note = fmt.Sprintf("added per proxy: p50 %+.0f µs, p99 %+.0f µs; n=%d",
				(p50-d50)/float64(p.Proxies), (p99-d99)/float64(p.Proxies), len(setup[i]))
		}
		r.tab.Add(secLatency, fmt.Sprintf("call setup INVITE -> 200 at %d/s, %s", *latRate, p.Name), fig, rat, note)
	}
}

// drainRows reports the cost of calls in progress and the way back.
func (r *run) drainRows(long longResult, d sippbench.DrainResult) {
	t := r.t
	gm, hm := sippbench.DrainMargins(long.base)
	if d.Err != nil {
		t.Fatalf("reading the nodes after the load: %v", d.Err)
	}
	if !d.GoroutinesOK {
		t.Errorf("goroutines not back to %.0f (+%.0f) within %s after the load: %.0f", long.base.Goroutines, gm, *drainMax, d.Last.Goroutines)
	}
	last := long.ramp[len(long.ramp)-1]
	r.tab.Add(secPerCall, fmt.Sprintf("goroutines per call in progress (3 nodes, %s calls at %d/s)", *longTalk, *longRate),
		fmt.Sprintf("%.2f", long.perCall.goroutines), "",
		fmt.Sprintf("%.0f idle, %.0f at %.0f calls in progress, %.0f at %.0f calls once the first calls had ended",
			long.base.Goroutines, last.s.Goroutines, last.inProgress, long.steady.s.Goroutines, long.steady.inProgress))
	r.tab.Add(secPerCall, "live heap per call in progress (3 nodes, after forced GC)", fmt.Sprintf("%.1f KiB", long.perCall.heap/1024), "",
		fmt.Sprintf("RSS %.1f KiB per call; live heap %.1f MiB idle, %.1f MiB at %.0f calls, %.1f MiB at the end of the load",
			long.perCall.rss/1024, long.base.Heap/(1<<20), last.s.Heap/(1<<20), last.inProgress, long.steady.s.Heap/(1<<20)))
	back := func(took time.Duration, ok bool) string {
		if !ok {
			return "not within " + drainMax.String()
		}
		return fmt.Sprintf("%.1f s", took.Seconds())
	}
	r.tab.Add(secPerCall, "goroutines back to the idle count after the load", back(d.Goroutines, d.GoroutinesOK), "",
		fmt.Sprintf("within %.0f of %.0f", gm, long.base.Goroutines))
	r.tab.Add(secPerCall, "live heap back to the idle size after the load", back(d.Heap, d.HeapOK), "",
		fmt.Sprintf("within %.1f MiB of %.1f MiB; %.1f MiB at the last reading", hm/(1<<20), long.base.Heap/(1<<20), d.Last.Heap/(1<<20)))
}

// Sections of the results table, in the order they are printed.
const (
	secRate = iota
	secLatency
	secRegister
	secPerCall
	secMachine
)
