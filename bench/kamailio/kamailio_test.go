package kamailio

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/bench/internal/sippbench"
	"github.com/dsn-ims/dsn/deploy/fleet"
)

// The short CI version is the default; run.sh passes the full run's
// values.
var (
	ladder    = sippbench.NewLadderFlags(flag.CommandLine, sippbench.Ladder{Start: 200, Factor: 4, Max: 800}, time.Second)
	rounds    = flag.Int("rounds", 1, "rounds of the head-to-head searches (SIPp ceiling, Kamailio, one dsn node take turns)")
	pause     = flag.Duration("pause", 100*time.Millisecond, "talk time of the calls (SIPp -d)")
	fixRate   = flag.Int("fixed-rate", 100, "calls/s of the fixed-rate runs (setup latency, CPU per call)")
	fixCalls  = flag.Int("fixed-calls", 200, "calls per fixed-rate run")
	fixRounds = flag.Int("fixed-rounds", 1, "fixed-rate rounds (the head-to-head paths take turns; 0: none)")
	regUsers  = flag.Int("register-users", 1000, "registered users: each system holds them all before its REGISTER steps, which refresh them")
	fleetArg  = flag.String("fleet", "3", "fleet sizes (comma list) for the caller -> entry node -> home -> phone path")
	modesArg  = flag.String("modes", "proxy,redirect", "route modes of the fleets (comma list)")
	contacts  = flag.Int("contacts", 10000, "contacts registered for the memory figures (one AOR each)")
	contRate  = flag.Int("contacts-rate", 900, "REGISTER/s while registering the -contacts on dsn-node (REGISTER over UDP takes no place in its overload window; its scheduling-delay limit still applies)")
	kamRate   = flag.Int("kamailio-contacts-rate", 2000, "REGISTER/s while registering the -contacts on Kamailio")
	sustain   = flag.Duration("sustain", 0, "length of a run at the best rate found for Kamailio and one dsn-node, to see whether it holds longer than a step (0: none)")
	kamKids   = flag.Int("kamailio-children", 4, "Kamailio UDP worker processes (-n)")
	kamShm    = flag.Int("kamailio-shm", DefaultConfig().ShmMB, "Kamailio shared memory, MiB (-m), for the call and REGISTER runs")
	profDir   = flag.String("profile-dir", "", "directory for the dsn-node CPU profiles under load and the heap profile of the memory run (none: no profiles)")
	emptyWin  = flag.Bool("empty-window", false, "before each step, wait until the dsn-nodes' overload gates hold no transaction of the last 32 s (needed once steps are long enough for one step's requests to count against the next)")
	partsArg  = flag.String("parts", "memory,head,register,fleet", "parts of the run (comma list): memory (bytes per contact), head (calls: SIPp, Kamailio and one dsn-node head to head), register (REGISTER/s: the SIPp stub, Kamailio, one dsn-node), fleet (the fleet path; needs head for its ratios)")
	regMax    = flag.Int("register-max", 0, "highest REGISTER/s the REGISTER searches try (0: -max)")
	drainMax  = flag.Duration("drain-max", 90*time.Second, "bound on the wait for a system to recover after a failed step")
)

const (
	domain = "dsn.bench"
	// Addresses of this benchmark's processes, 127.0.0.x (bench/calls
	// uses .41-.44).
	ipKamailio = "127.0.0.70"
	ipSolo     = 71
	ipFleet    = 72 // .72-.76
	ipMemDSN   = 77
	ipMemKam   = "127.0.0.78"
)

// Sections of the results table, in the order they are printed.
const (
	secCalls = iota
	secFleet
	secLatency
	secRegister
	secMemory
	secMachine
)

// run is one benchmark run: what the parts share.
type run struct {
	t     *testing.T
	b     *sippbench.Bench
	l     sippbench.Ladder
	tab   sippbench.Table
	scen  struct{ uac, direct, redirect, register string }
	loads []string // load average at the start of each part
	// Kamailio's figures, the baselines of the fleets.
	kamCalls sippbench.Result
	kamFixed *fixedResult
	// The memory figures: dsn's node under way, Kamailio's figure.
	mem      *memRun
	memUsers string
	kamPer   float64
}

// part notes the load average as a part of the run starts, and reads
// the memory node when it is ready.
func (r *run) part(name string) {
	r.memCheck(false)
	l := sippbench.Loadavg()
	r.loads = append(r.loads, name+" "+l)
	r.t.Logf("=== %s (load average %s)", name, l)
}

// system under test: what a path's figures are read from.
type target struct {
	name string
	sys  sippbench.System // nil: SIPp only
	path sippbench.CallPath
}

func TestKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process benchmark")
	}
	sipp := fleet.RequireTool(t, "sipp")
	kamBin := fleet.RequireTool(t, "kamailio")
	kamcmd := fleet.RequireTool(t, "kamcmd")
	r := &run{t: t, l: ladder.Ladder()}
	r.b = &sippbench.Bench{SIPp: sipp, Domain: domain,
		UAS:           sippbench.Abs(t, "../../sip/proxy/testdata/sipp/uas.xml"),
		RegisterUsers: sippbench.Abs(t, "../calls/testdata/register_users.xml"),
		RegistrarStub: sippbench.Abs(t, "../calls/testdata/registrar_stub.xml"),
		Users:         fleet.WriteUsers(t, t.TempDir(), domain, *regUsers)}
	r.scen.uac, r.scen.direct = sippbench.Abs(t, "testdata/uac.xml"), sippbench.Abs(t, "testdata/uac_direct.xml")
	r.scen.redirect, r.scen.register = sippbench.Abs(t, "testdata/uac_redirect.xml"), sippbench.Abs(t, "../../sip/proxy/testdata/sipp/register.xml")
	if err := r.b.Validate(); err != nil {
		t.Fatal(err)
	}
	r.tab.Header = [4]string{"what", "figure", "ratio", "notes"}
	load0 := sippbench.Loadavg()
	t.Cleanup(func() {
		r.tab.Add(secMachine, "machine load average (1 min) at start / end", load0+" / "+sippbench.Loadavg(), "",
			"other work on the shared 2-core machine; at the start of each part: "+strings.Join(r.loads, ", "))
		t.Log("\n" + r.tab.String())
	})
	kcfg := DefaultConfig()
	kcfg.Binary, kcfg.Kamcmd, kcfg.File = kamBin, kamcmd, sippbench.Abs(t, "kamailio.cfg")
	kcfg.Children, kcfg.ShmMB, kcfg.Settle = *kamKids, *kamShm, *drainMax

	parts := map[string]bool{}
	for _, p := range strings.Split(*partsArg, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	// Memory first: the dsn node is read once its REGISTER transactions
	// are gone, at the start of a later part (or at the end).
	if parts["memory"] {
		r.memStart()
		r.memKamailio(kcfg)
	}
	if parts["head"] {
		r.headToHead(kcfg)
	}
	if parts["register"] {
		r.registers(kcfg)
	}
	if parts["fleet"] {
		r.fleets()
	}
	r.memCheck(true)
}

// phone registers user at registrar with a Contact on a fresh 127.0.0.1
// port, where the phone (uas.xml) of each batch will listen.
func (r *run) phone(registrar, user string) string {
	t := r.t
	phone := fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))
	fleet.SIPp(t, registrar, "-sf", r.scen.register, "-i", "127.0.0.1", "-p", sippbench.PortOf(t, phone),
		"-s", user, "-key", "domain", domain, "-m", "1")
	return phone
}

// startFleet starts n nodes on 127.0.0.<ip0>.. at info level with -pprof
// and the route mode, and waits for one ring.
func startFleet(t *testing.T, prefix string, ip0, n int, mode string) []*fleet.Proc {
	t.Helper()
	f := fleet.New(t, domain)
	var ps []*fleet.Proc
	for i := 0; i < n; i++ {
		var join []string
		if i > 0 {
			join = []string{ps[0].Cluster}
		}
		ps = append(ps, f.Start(fmt.Sprintf("%s%d", prefix, i+1), fmt.Sprintf("127.0.0.%d", ip0+i), join,
			"-log-level", "info", "-pprof", "-route-mode", mode))
	}
	fleet.Eventually(t, 30*time.Second, "ring formed", func() error { return fleet.RingConsistent(ps) })
	return ps
}

// climb searches the highest call rate along tg's path.
func (r *run) climb(tg target) (sippbench.Result, map[int]string) {
	return sippbench.Climb(r.t, r.l, *ladder.Step, "calls "+tg.name, tg.sys, true, func(n, rate int) sippbench.Outcome {
		return r.b.Calls(r.t, tg.path, n, rate, *pause, false)
	})
}

// regClimb searches the highest REGISTER rate against addr (a SIPp stub
// listens there with stub). A registrar first gets every user registered
// at 1000/s, so each step refreshes a registered population of
// -register-users AORs.
func (r *run) regClimb(name, addr string, stub bool, sys sippbench.System) (sippbench.Result, map[int]string) {
	t := r.t
	port := fleet.FreeUDPPort(t, "127.0.0.1")
	if !stub {
		if o := r.b.Registers(t, addr, false, port, *regUsers, 1000); !o.CallsOK {
			t.Fatalf("registering %d users at 1000/s with %s: %s", *regUsers, name, o.Note)
		}
	}
	l := r.l
	if *regMax > 0 {
		l.Max = *regMax
	}
	return sippbench.Climb(t, l, *ladder.Step, "REGISTER "+name, sys, false, func(n, rate int) sippbench.Outcome {
		return r.b.Registers(t, addr, stub, port, n, rate)
	})
}

// best is the highest of several searches of the same thing (rounds):
// the figure the machine allowed when other work left it alone.
func best(rs []sippbench.Result) sippbench.Result {
	b := rs[0]
	for _, x := range rs[1:] {
		if x.Best > b.Best {
			b = x
		}
	}
	return b
}

// rounds lists the figures of all rounds, for the notes.
func roundsNote(rs []sippbench.Result) string {
	if len(rs) < 2 {
		return ""
	}
	var s []string
	for _, x := range rs {
		s = append(s, x.String())
	}
	return "rounds: " + strings.Join(s, ", ") + "; "
}

// row adds a search's line: figure, ratio, steps, and what was used at
// the best rate.
func (r *run) row(section int, what string, rs []sippbench.Result, used map[int]string, ratio, extra string) {
	res := best(rs)
	note := extra + roundsNote(rs) + res.Trace()
	if u := used[res.Best]; u != "" {
		note += fmt.Sprintf(". At %d/s: %s", res.Best, u)
	}
	r.tab.Add(section, what, res.String(), ratio, note)
}

// startPair starts Kamailio and a 1-node dsn ring (nodes named prefix1).
func (r *run) startPair(kcfg Config, prefix string) (*Server, []*fleet.Proc, sippbench.Nodes) {
	t := r.t
	kcfg.IP, kcfg.Port = ipKamailio, fleet.FreeUDPPort(t, ipKamailio)
	kam, err := Start(t, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	solo := startFleet(t, prefix, ipSolo, 1, "proxy")
	return kam, solo, sippbench.Nodes{Procs: solo, DrainMax: *drainMax, EmptyWindow: *emptyWin}
}

// headToHead measures SIPp alone, Kamailio and one dsn-node, taking turns
// round after round: calls/s, setup latency and CPU per call at a fixed
// rate. It keeps Kamailio's figures for the fleets.
func (r *run) headToHead(kcfg Config) {
	t := r.t
	r.part("head to head")
	kam, solo, soloSys := r.startPair(kcfg, "solo")
	defer kam.Stop()
	defer solo[0].Kill()

	direct := fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(t, "127.0.0.1"))
	targets := []target{
		{name: "SIPp caller -> SIPp phone (ceiling)", path: sippbench.CallPath{Name: "direct", Scenario: r.scen.direct,
			Target: direct, User: "bob", Phone: direct}},
		{name: "Kamailio", sys: kam, path: sippbench.CallPath{Name: "kamailio", Proxies: 1, Scenario: r.scen.uac,
			Target: kam.Addr(), User: "bob", Phone: r.phone(kam.Addr(), "bob")}},
		{name: "one dsn-node", sys: soloSys, path: sippbench.CallPath{Name: "dsn", Proxies: 1, Scenario: r.scen.uac,
			Target: solo[0].SIP, User: "bob", Phone: r.phone(solo[0].SIP, "bob")}},
	}
	res := make([][]sippbench.Result, len(targets))
	used := make([]map[int]string, len(targets))
	for round := 0; round < *rounds; round++ {
		for i, tg := range targets {
			x, u := r.climb(tg)
			res[i] = append(res[i], x)
			if used[i] == nil || x.Best >= best(res[i]).Best {
				used[i] = u
			}
		}
	}
	ceil, kamRes, soloRes := best(res[0]), best(res[1]), best(res[2])
	bound := func(x sippbench.Result) string {
		if x.Best >= ceil.Best && !ceil.Capped {
			return "bounded by SIPp (at its ceiling); "
		}
		return ""
	}
	r.row(secCalls, "calls/s at 0 failures, SIPp caller -> SIPp phone (SIPp ceiling)", res[0], used[0], "-", "")
	r.row(secCalls, fmt.Sprintf("calls/s at 0 failures, caller -> Kamailio (%d UDP workers, -m %d) -> phone", kcfg.Children, kcfg.ShmMB),
		res[1], used[1], "1 (baseline)", bound(kamRes))
	r.row(secCalls, "calls/s at 0 failures, caller -> one dsn-node (callee registered on it) -> phone", res[2], used[2],
		sippbench.Ratio(soloRes, kamRes)+" of Kamailio", bound(soloRes)+"target >= 1.0x; ")

	r.kamCalls = kamRes
	if shm, err := kam.ShmMax(); err == nil {
		r.tab.Add(secCalls, "Kamailio shared memory, most used so far", fmt.Sprintf("%.0f MiB of %d", float64(shm)/(1<<20), kcfg.ShmMB), "",
			"core.shmmem max_used after the call searches: the -m it ran with was not what limited it")
	}
	if *sustain > 0 {
		r.sustainRun(targets[1], kamRes)
		r.sustainRun(targets[2], soloRes)
	}

	// Setup latency and CPU per call at a fixed rate, taking turns.
	fx := r.fixed(targets, nil, "head to head")
	r.kamFixed = &fx[1]
	r.profile(solo[0], targets[2], soloRes, "calls")
}

// registers measures REGISTER/s at 0 failures: the SIPp registrar stub
// (SIPp's ceiling), Kamailio's usrloc and one dsn-node (a 1-node ring),
// each with -register-users registered first.
func (r *run) registers(kcfg Config) {
	r.part("REGISTER/s")
	kam, solo, soloSys := r.startPair(kcfg, "regsolo")
	defer kam.Stop()
	defer solo[0].Kill()
	stub := fmt.Sprintf("127.0.0.1:%d", fleet.FreeUDPPort(r.t, "127.0.0.1"))
	regStub, stubUsed := r.regClimb("stub", stub, true, nil)
	regKam, kamUsed := r.regClimb("kamailio", kam.Addr(), false, kam)
	regSolo, soloUsed := r.regClimb("one dsn-node", solo[0].SIP, false, soloSys)
	r.row(secRegister, "REGISTER/s at 0 failures, SIPp -> SIPp registrar stub (SIPp ceiling)", []sippbench.Result{regStub}, stubUsed, "-", "")
	r.row(secRegister, "REGISTER/s at 0 failures, Kamailio usrloc (in memory)", []sippbench.Result{regKam}, kamUsed, "1 (baseline)",
		boundReg(regKam, regStub))
	r.row(secRegister, "REGISTER/s at 0 failures, one dsn-node (1-node ring)", []sippbench.Result{regSolo}, soloUsed,
		sippbench.Ratio(regSolo, regKam)+" of Kamailio", boundReg(regSolo, regStub))
	r.profileRegister(solo[0], regSolo)
}

func boundReg(x, ceil sippbench.Result) string {
	if x.Best >= ceil.Best && !ceil.Capped {
		return "bounded by SIPp (at its ceiling); "
	}
	return ""
}

// fixed runs -fixed-calls calls at -fixed-rate along each target, taking
// turns for -fixed-rounds, and reports setup latency (p50/p99) and the
// system's CPU time per call. Ratios are against Kamailio's figures (the
// second target) when there is one, else against ref.
func (r *run) fixed(targets []target, ref *fixedResult, label string) []fixedResult {
	t := r.t
	out := make([]fixedResult, len(targets))
	if *fixRounds == 0 {
		return out // -fixed-rounds=0: no fixed-rate runs
	}
	for round := 0; round < *fixRounds; round++ {
		for i, tg := range targets {
			if tg.sys != nil {
				sippbench.Ready(t, tg.sys)
			}
			var s0 sippbench.Sample
			if tg.sys != nil {
				s0 = sippbench.MustSample(t, tg.sys, false)
			}
			o := r.b.Calls(t, tg.path, *fixCalls, *fixRate, *pause, true)
			if !o.CallsOK {
				t.Errorf("fixed-rate run %s at %d/s: %s", tg.name, *fixRate, o.Note)
			}
			if tg.sys != nil {
				s1 := sippbench.MustSample(t, tg.sys, false)
				out[i].cpu += s1.CPU - s0.CPU
			}
			out[i].calls += *fixCalls
			out[i].setup = append(out[i].setup, o.Setup...)
		}
	}
	for i, tg := range targets {
		f := &out[i]
		if len(f.setup) == 0 {
			t.Errorf("%s: no setup times logged", tg.name)
			continue
		}
		f.p50, f.p99 = sippbench.Percentile(f.setup, 0.5), sippbench.Percentile(f.setup, 0.99)
		f.usPerCall = f.cpu / float64(f.calls) * 1e6
		base := ref
		if base == nil && len(targets) > 1 && i > 0 {
			base = &out[1]
		}
		rat := "-"
		if base != nil && base != f && base.p50 > 0 {
			rat = fmt.Sprintf("%.2fx / %.2fx of Kamailio", f.p50/base.p50, f.p99/base.p99)
		} else if base == f {
			rat = "1 (baseline)"
		}
		r.tab.Add(secLatency, fmt.Sprintf("call setup INVITE -> 200 at %d/s, %s", *fixRate, tg.name),
			fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", f.p50, f.p99), rat, fmt.Sprintf("n=%d (%s)", len(f.setup), label))
		if tg.sys != nil {
			crat := "-"
			if base != nil && base != f && base.usPerCall > 0 {
				crat = fmt.Sprintf("%.2fx of Kamailio", f.usPerCall/base.usPerCall)
			} else if base == f {
				crat = "1 (baseline)"
			}
			r.tab.Add(secLatency, fmt.Sprintf("CPU per call at %d/s, %s", *fixRate, tg.name), fmt.Sprintf("%.0f µs", f.usPerCall), crat,
				fmt.Sprintf("%s CPU time (all its processes) over %d calls, idle work included", tg.sys, f.calls))
		}
	}
	return out
}

// fixedResult is what the fixed-rate runs of one target gave.
type fixedResult struct {
	calls     int
	cpu       float64 // seconds
	setup     []float64
	p50, p99  float64
	usPerCall float64
}

// perfRecord samples node with Linux perf (when installed) for secs
// seconds into file, alongside the pprof CPU profile: Go's profiler
// leaves out much of the time the kernel spends switching the node's
// threads, which perf sees. The returned func waits for perf.
func perfRecord(t *testing.T, node *fleet.Proc, secs int, file string) func() {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return func() {}
	}
	pid, err := pidOf(node.Name)
	if err != nil {
		t.Logf("perf: %v", err)
		return func() {}
	}
	cmd := exec.Command(perf, "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file, "--", "sleep", strconv.Itoa(secs))
	if err := cmd.Start(); err != nil {
		t.Logf("perf: %v", err)
		return func() {}
	}
	return func() {
		if err := cmd.Wait(); err != nil {
			t.Logf("perf record: %v", err)
		}
	}
}

// pidOf finds the dsn-node process started with -name name.
func pidOf(name string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := []byte("\x00-name\x00" + name + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "dsn-node") && bytes.Contains(b, want) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no dsn-node process named %s", name)
}

// sustainRun runs tg at the best rate its search found for -sustain,
// longer than a step (and than the 32 s of a dsn-node's transaction
// window), and adds whether it held.
func (r *run) sustainRun(tg target, res sippbench.Result) {
	if res.Best == 0 {
		return
	}
	t := r.t
	sippbench.Ready(t, tg.sys)
	n := int(float64(res.Best) * sustain.Seconds())
	s0 := sippbench.MustSample(t, tg.sys, false)
	o := r.b.Calls(t, tg.path, n, res.Best, *pause, false)
	s1 := sippbench.MustSample(t, tg.sys, false)
	fig := "held"
	if !o.OK {
		fig = "did not hold: " + o.Short()
		tg.sys.Recover(t, s0)
	}
	r.tab.Add(secCalls, fmt.Sprintf("%s for %s at its best rate, %d calls/s", tg.name, sustain, res.Best), fig, "",
		fmt.Sprintf("%d calls; %s %.2f cores, %.0f µs CPU per call; %s", n, tg.sys, (s1.CPU-s0.CPU)/o.Wall.Seconds(),
			(s1.CPU-s0.CPU)/float64(n)*1e6, firstLine(o.Note)))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// profile takes a CPU profile of node while calls run along tg at 80% of
// the rate it sustained, into -profile-dir/<what>.cpu.
func (r *run) profile(node *fleet.Proc, tg target, res sippbench.Result, what string) {
	if *profDir == "" || res.Best == 0 {
		return
	}
	t := r.t
	rate := max(res.Best*8/10, ladder.Ladder().Start)
	secs := max(int(ladder.Step.Seconds()), 5)
	sippbench.Ready(t, tg.sys)
	cb := r.b.StartCalls(t, tg.path, rate*(secs+2), rate, *pause, false)
	file := filepath.Join(*profDir, what+".cpu")
	stopPerf := perfRecord(t, node, secs, filepath.Join(*profDir, what+".perf"))
	err := sippbench.SaveProfile(node, "profile?seconds="+strconv.Itoa(secs), file)
	stopPerf()
	o := cb.Finish()
	if err != nil {
		t.Errorf("CPU profile: %v", err)
		return
	}
	t.Logf("CPU profile of %s under %d %s/s (%s): %s", node.Name, rate, what, o.Short(), file)
}

// profileRegister takes a CPU profile of node under REGISTERs at 80% of
// the rate it sustained.
func (r *run) profileRegister(node *fleet.Proc, res sippbench.Result) {
	if *profDir == "" || res.Best == 0 {
		return
	}
	t := r.t
	rate := max(res.Best*8/10, ladder.Ladder().Start)
	secs := max(int(ladder.Step.Seconds()), 5)
	port := fleet.FreeUDPPort(t, "127.0.0.1")
	done := make(chan sippbench.Outcome, 1)
	go func() { done <- r.b.Registers(t, node.SIP, false, port, rate*(secs+2), rate) }()
	file := filepath.Join(*profDir, "register.cpu")
	stopPerf := perfRecord(t, node, secs, filepath.Join(*profDir, "register.perf"))
	err := sippbench.SaveProfile(node, "profile?seconds="+strconv.Itoa(secs), file)
	stopPerf()
	o := <-done
	if err != nil {
		t.Errorf("CPU profile: %v", err)
		return
	}
	t.Logf("CPU profile of %s under %d REGISTER/s (%s): %s", node.Name, rate, o.Short(), file)
}

// fleets measures the path caller -> entry node -> home node -> phone on
// rings of each size and route mode, against Kamailio's calls/s; on the
// 3-node ring in proxy mode also REGISTER/s with replicas 3.
func (r *run) fleets() {
	t := r.t
	for _, size := range splitInts(t, *fleetArg) {
		for _, mode := range strings.Split(*modesArg, ",") {
			r.part(fmt.Sprintf("fleet %d %s", size, mode))
			ps := startFleet(t, fmt.Sprintf("f%d%s", size, mode[:1]), ipFleet, size, mode)
			sys := sippbench.Nodes{Procs: ps, DrainMax: *drainMax, EmptyWindow: *emptyWin}
			entry, home := ps[0], ps[size-1]
			user := userHomedOn(t, entry, home, "callee")
			tg := target{name: fmt.Sprintf("%d nodes, %s", size, mode), sys: sys, path: sippbench.CallPath{
				Name: mode, Proxies: 2, Scenario: r.scen.uac, Target: entry.SIP, User: user, Phone: r.phone(home.SIP, user)}}
			how := "caller -> entry node -> home node -> phone"
			if mode == "redirect" {
				tg.path.Proxies, tg.path.Scenario = 1, r.scen.redirect
				how = "caller -> entry node (302) -> caller -> home node -> phone"
			}
			res, used := r.climb(tg)
			r.row(secFleet, fmt.Sprintf("calls/s at 0 failures, %d-node ring, %s mode: %s", size, mode, how),
				[]sippbench.Result{res}, used, sippbench.Ratio(res, r.kamCalls)+" of Kamailio", "target >= 0.5x; CPU summed over the nodes; ")
			r.fixed([]target{tg}, r.kamFixed, fmt.Sprintf("%d-node ring", size))
			if size == 3 && mode == "proxy" {
				reg, regUsed := r.regClimb("3-node ring", entry.SIP, false, sys)
				r.row(secRegister, "REGISTER/s at 0 failures, one node of a 3-node ring, replicas 3", []sippbench.Result{reg}, regUsed,
					"see Kamailio's row", "every REGISTER written to the home node and 2 replicas; ")
			}
			for _, p := range ps {
				p.Kill()
			}
		}
	}
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

func splitInts(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			t.Fatalf("-fleet %q: want sizes >= 2", s)
		}
		out = append(out, n)
	}
	return out
}

// memRun is the dsn side of the memory figures: a node that got
// -contacts REGISTERs and is read once the transactions of those are gone
// (sipgo keeps a REGISTER's server transaction 32 s after its answer).
type memRun struct {
	node      *fleet.Proc
	sys       sippbench.Nodes
	before    sippbench.Sample
	idleCPU   float64 // CPU time when the REGISTERs were done
	idleSince time.Time
	o         sippbench.Outcome
	n         int
}

// memStart registers -contacts AORs (one contact each) on a fresh 1-node
// dsn ring, which then holds every record once, as its owner. The node is
// read by memCheck.
func (r *run) memStart() {
	t := r.t
	n := *contacts
	r.part(fmt.Sprintf("memory, %d contacts", n))
	ps := startFleet(t, "mem", ipMemDSN, 1, "proxy")
	m := &memRun{node: ps[0], sys: sippbench.Nodes{Procs: ps, EmptyWindow: *emptyWin}, n: n}
	sippbench.WaitQuiet(t, m.sys, 30*time.Second)
	m.before = sippbench.MustSample(t, m.sys, true)
	m.o = r.b.RegistersFrom(t, m.node.SIP, false, fleet.FreeUDPPort(t, "127.0.0.1"), n, *contRate, r.contactUsers())
	if !m.o.CallsOK {
		t.Errorf("registering %d contacts at %d/s on dsn-node: %s (the figure counts what it holds)", n, *contRate, m.o.Note)
	}
	s := sippbench.MustSample(t, m.sys, false)
	m.idleCPU, m.idleSince = s.CPU, s.At
	r.mem = m
}

// contactUsers writes the injection file of the -contacts users once.
func (r *run) contactUsers() string {
	if r.memUsers == "" {
		r.memUsers = fleet.WriteUsers(r.t, r.t.TempDir(), domain, *contacts)
	}
	return r.memUsers
}

// memCheck reads the memory node once its transaction window is empty
// (with wait, it waits up to 60 s for that), adds the rows and stops it.
func (r *run) memCheck(wait bool) {
	m := r.mem
	if m == nil {
		return
	}
	t := r.t
	deadline := time.Now().Add(60 * time.Second)
	for {
		mt, err := m.node.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		if fleet.MetricSum(mt, "dsn_sip_transactions") == 0 {
			break
		}
		if !wait {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("memory node: transactions still held after 60 s; reading it anyway")
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.mem = nil
	sippbench.WaitQuiet(t, m.sys, 60*time.Second)
	after := sippbench.MustSample(t, m.sys, true)
	st, err := m.node.Status()
	if err != nil {
		t.Fatal(err)
	}
	held := st.Registrations.Owned + st.Registrations.Replica
	if held == 0 {
		t.Fatalf("dsn-node holds no registration after %d REGISTERs", m.n)
	}
	if *profDir != "" {
		if err := sippbench.SaveProfile(m.node, "heap?gc=1", filepath.Join(*profDir, "contacts.heap")); err != nil {
			t.Errorf("heap profile: %v", err)
		}
	}
	m.node.Kill()
	heapPer := (after.Live - m.before.Live) / float64(held)
	inusePer := (after.Heap - m.before.Heap) / float64(held)
	rssPer := (after.RSS - m.before.RSS) / float64(held)
	idle := (after.CPU - m.idleCPU) / after.At.Sub(m.idleSince).Seconds()
	rat := func(x float64) string {
		if r.kamPer <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx of Kamailio", x/r.kamPer)
	}
	r.tab.Add(secMemory, fmt.Sprintf("dsn-node, bytes per registered contact at %d contacts (live heap)", held),
		fmt.Sprintf("%.0f B", heapPer), rat(heapPer),
		fmt.Sprintf("target <= 1024 B; %d AORs with one contact each, registered at %d/s (%s) on a 1-node ring: the node owns every "+
			"record, no replica copies; read %.0f s later, once its REGISTER transactions were gone (it used %.0f%% of a core meanwhile); "+
			"live heap (objects after a forced GC) %.1f -> %.1f MiB; heap spans in use %.1f -> %.1f MiB (%.0f B per contact)",
			held, *contRate, outcomeWord(m.o), after.At.Sub(m.idleSince).Seconds(), 100*idle, m.before.Live/(1<<20), after.Live/(1<<20),
			m.before.Heap/(1<<20), after.Heap/(1<<20), inusePer))
	r.tab.Add(secMemory, fmt.Sprintf("dsn-node, bytes per registered contact at %d contacts (whole process RSS)", held),
		fmt.Sprintf("%.0f B", rssPer), rat(rssPer),
		fmt.Sprintf("RSS %.1f -> %.1f MiB; includes heap the Go runtime keeps for reuse", m.before.RSS/(1<<20), after.RSS/(1<<20)))
}

// memKamailio registers -contacts AORs on a fresh Kamailio whose shared
// memory is sized for them and divides what its shared memory grew by
// (Kamailio answers REGISTER statelessly: no transaction to wait for).
func (r *run) memKamailio(kcfg Config) {
	t := r.t
	n := *contacts
	kcfg.IP, kcfg.Port = ipMemKam, fleet.FreeUDPPort(t, ipMemKam)
	kcfg.ShmMB = max(kcfg.ShmMB, 256+int(math.Ceil(float64(n)*2048/(1<<20))))
	kam, err := Start(t, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kam.Stop()
	sippbench.WaitQuiet(t, kam, 30*time.Second)
	shm0, err := kam.Shm()
	if err != nil {
		t.Fatal(err)
	}
	k0 := sippbench.MustSample(t, kam, true)
	ko := r.b.RegistersFrom(t, kam.Addr(), false, fleet.FreeUDPPort(t, "127.0.0.1"), n, *kamRate, r.contactUsers())
	if !ko.CallsOK {
		t.Errorf("registering %d contacts at %d/s on Kamailio: %s (the figure counts what it holds)", n, *kamRate, ko.Note)
	}
	held, err := kam.Stat("usrloc:location_contacts")
	if err != nil {
		t.Fatal(err)
	}
	if held == 0 {
		t.Fatalf("Kamailio holds no registration after %d REGISTERs", n)
	}
	shm1, err := kam.Shm()
	if err != nil {
		t.Fatal(err)
	}
	k1 := sippbench.MustSample(t, kam, true)
	r.kamPer = float64(shm1-shm0) / float64(held)
	r.tab.Add(secMemory, fmt.Sprintf("Kamailio, bytes per registered contact at %d contacts (shared memory)", held),
		fmt.Sprintf("%.0f B", r.kamPer), "1 (baseline)",
		fmt.Sprintf("core.shmmem real_used %.1f -> %.1f MiB (-m %d); PSS of its %d processes %.1f -> %.1f MiB (%.0f B per contact); "+
			"registered at %d/s (%s)", float64(shm0)/(1<<20), float64(shm1)/(1<<20), kcfg.ShmMB, kam.Processes(),
			k0.RSS/(1<<20), k1.RSS/(1<<20), (k1.RSS-k0.RSS)/float64(held), *kamRate, outcomeWord(ko)))
}

func outcomeWord(o sippbench.Outcome) string {
	if o.OK {
		return "all succeeded"
	}
	if o.CallsOK {
		return "all succeeded, rate not kept"
	}
	return o.Short()
}
