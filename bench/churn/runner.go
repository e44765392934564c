package churn

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
	"github.com/dsn-ims/dsn/dht"
)

// runner is one churn run. The test goroutine runs setup, the call load
// and the final check; one event at a time runs on its own goroutine
// (runEvent), which starts and stops processes and reads the nodes but
// never touches the TB. mu guards the node table both share.
type runner struct {
	t   fleet.TB
	cfg Config
	rng *rand.Rand // test goroutine only
	f   *fleet.DNSFleet

	order     []string          // node names in ring order
	ip        map[string]string // name -> loopback IP
	addrNode  map[string]string // SIP host:port -> name (stable across restarts)
	phonePort int
	dir       string // the run's files (SIPp injection files)

	mu    sync.Mutex
	procs map[string]*fleet.Proc // current process of each node
	down  map[string]bool        // signalled and not serving again yet
	downs downtimes
}

// Run performs one churn run as cfg describes and returns its report. It
// fails t when the fleet cannot be set up; the report's figures are judged
// by the caller. Call it on the test's goroutine.
func Run(t fleet.TB, cfg Config) *Report {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	fleet.RequireTool(t, "sipp")
	r := &runner{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0xc4a2)),
		ip: map[string]string{}, addrNode: map[string]string{},
		procs: map[string]*fleet.Proc{}, down: map[string]bool{}, downs: downtimes{}}
	rep := &Report{Config: cfg}
	r.startFleet()
	rep.Registration = r.register()
	if err := r.waitSettled(cfg.AORs, cfg.SettleTimeout); err != nil {
		t.Fatalf("after registering %d AORs: %v", cfg.AORs, err)
	}
	r.startPhones()
	r.load(rep)
	start := time.Now()
	if err := r.waitSettled(cfg.AORs, cfg.SettleTimeout); err != nil {
		rep.FinalSettleErr = err.Error()
	}
	rep.FinalSettle = time.Since(start)
	rep.Final = r.finalCheck()
	return rep
}

// nodeArgs are the flags every node gets besides the harness defaults.
func (r *runner) nodeArgs() []string {
	return []string{"-dns-server", r.f.Named, "-tsig-key-file", r.f.BIND.KeyFile(),
		"-reps", strconv.Itoa(r.cfg.Reps), "-replicas", strconv.Itoa(r.cfg.Replicas),
		"-log-level", r.cfg.NodeLogLevel}
}

// startFleet starts BIND and sn1..snN on 127.0.0.11.., joined one by one,
// and waits until the ring and DNS are consistent.
func (r *runner) startFleet() {
	t := r.t
	t.Helper()
	srv := fleet.StartBIND(t, r.cfg.Domain)
	r.f = &fleet.DNSFleet{Fleet: fleet.New(t, r.cfg.Domain), BIND: srv, Named: srv.Addr(), Procs: map[string]*fleet.Proc{}}
	var join []string
	for i := 1; i <= r.cfg.Nodes; i++ {
		name, ip := fmt.Sprintf("sn%d", i), fmt.Sprintf("127.0.0.%d", 10+i)
		p := r.f.Start(name, ip, join, r.nodeArgs()...)
		if len(join) < 2 {
			join = append(join, p.Cluster)
		}
		r.f.Procs[name] = p
		r.procs[name] = p
		r.ip[name] = ip
		r.addrNode[p.SIP] = name
		r.order = append(r.order, name)
	}
	sort.Slice(r.order, func(i, j int) bool { return dht.NodeID(r.order[i]) < dht.NodeID(r.order[j]) })
	if err := r.waitSettled(0, r.cfg.SettleTimeout); err != nil {
		t.Fatalf("fleet of %d: %v", r.cfg.Nodes, err)
	}
}

// live returns the processes of the nodes not signalled, in name order.
func (r *runner) live() []*fleet.Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*fleet.Proc
	for name, p := range r.procs {
		if !r.down[name] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *runner) look(aors int) sample {
	return look(r.live(), r.f.Named, r.cfg.Domain, r.cfg.Reps, r.cfg.Replicas, aors)
}

// waitSettled polls every 100 ms until DNS, the ring and the copies of
// aors records are consistent and stay so for StableFor; it returns the
// last reason when d passes first. Safe to call from the event goroutine.
func (r *runner) waitSettled(aors int, d time.Duration) error {
	_, err := r.observe(aors, time.Now(), time.Now().Add(d), true)
	return err
}

// observe samples every 100 ms from now until end, or (untilStable) until
// every check has held for StableFor. It returns the samples and, when
// untilStable and end came first, the last sample's failure.
func (r *runner) observe(aors int, start, end time.Time, untilStable bool) ([]sample, error) {
	var ss []sample
	var okSince time.Time
	for {
		s := r.look(aors)
		ss = append(ss, s)
		if s.ok() {
			if okSince.IsZero() {
				okSince = s.At
			}
			if untilStable && s.At.Sub(okSince) >= r.cfg.StableFor {
				return ss, nil
			}
		} else {
			okSince = time.Time{}
		}
		if time.Now().After(end) {
			if !untilStable {
				return ss, nil
			}
			return ss, fmt.Errorf("churn: not consistent for %s within %s: dns: %v; ring: %v; copies: %v",
				r.cfg.StableFor, end.Sub(start).Round(time.Millisecond), s.DNS, s.Ring, s.Copies)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RegistrationStats is the registration of the phones before the churn.
type RegistrationStats struct {
	AORs, OK, Failed int
	Took             time.Duration
}

// register registers every AOR, the i-th slice through the i-th node, from
// the phone's port (so every Contact reaches the one UAS).
func (r *runner) register() RegistrationStats {
	t := r.t
	t.Helper()
	r.phonePort = fleet.FreeUDPPort(t, "127.0.0.1")
	r.dir = t.TempDir()
	dir := r.dir
	st := RegistrationStats{AORs: r.cfg.AORs}
	start := time.Now()
	n := len(r.order)
	for k, name := range r.order {
		lo, hi := k*r.cfg.AORs/n, (k+1)*r.cfg.AORs/n
		if lo == hi {
			continue
		}
		var b strings.Builder
		b.WriteString("SEQUENTIAL\n")
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&b, "%s;%s\n", r.user(i), r.cfg.Domain)
		}
		inf := filepath.Join(dir, name+"-users.csv")
		if err := os.WriteFile(inf, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		c := fleet.RunSIPpCounted(t, 10*time.Minute, r.procs[name].SIP,
			"-sf", r.scenario("register.xml"), "-inf", inf, "-m", strconv.Itoa(hi-lo), "-r", strconv.Itoa(r.cfg.RegisterRate),
			"-l", "200", "-i", "127.0.0.1", "-p", strconv.Itoa(r.phonePort), "-recv_timeout", "5000", "-timeout", "10m")
		st.OK += c.Successful
		st.Failed += c.Failed
		if c.Successful != hi-lo {
			t.Fatalf("registering %d AORs through %s: %d ok, %d failed: %v", hi-lo, name, c.Successful, c.Failed, c.Errors)
		}
	}
	st.Took = time.Since(start)
	return st
}

func (r *runner) user(i int) string { return fmt.Sprintf("user%05d", i) }

// aor is the canonical AOR of phone i.
func (r *runner) aor(i int) string { return "sip:" + r.user(i) + "@" + r.cfg.Domain }

// contact is the Contact phone i registered.
func (r *runner) contact(i int) string {
	return fmt.Sprintf("sip:%s@127.0.0.1:%d", r.user(i), r.phonePort)
}

func (r *runner) scenario(name string) string { return filepath.Join(r.cfg.Scenarios, name) }

// startPhones starts the SIPp UAS that answers for every AOR.
func (r *runner) startPhones() {
	r.t.Helper()
	fleet.StartSIPp(r.t, "", "-sf", r.scenario("uas.xml"), "-i", "127.0.0.1", "-p", strconv.Itoa(r.phonePort))
	fleet.WaitUDPBound(r.t, "127.0.0.1:"+strconv.Itoa(r.phonePort), 10*time.Second)
}

// load runs the call load (one chunk a second) for Baseline, then starts
// events until Churn has passed, waits for the last one, and keeps the
// load on for Tail. It then collects every chunk's counts.
func (r *runner) load(rep *Report) {
	t := r.t
	t.Helper()
	cscf := fleet.NewCSCF(r.f.Named, r.cfg.Seed)
	var chunks []*chunk
	startChunk := func() {
		c := &chunk{Index: len(chunks), Start: time.Now(), Mode: "cscf"}
		chunks = append(chunks, c)
		if c.Index%2 == 1 {
			c.Mode = "node"
			live := r.live()
			p := live[r.rng.IntN(len(live))]
			c.Target, c.Node = p.SIP, p.Name
		} else {
			ans, err := cscf.Resolve(r.cfg.Domain)
			if err != nil {
				return // counted as not sent
			}
			for _, a := range ans {
				c.DNS = append(c.DNS, a.String())
			}
			c.Target = c.DNS[0]
			c.Node = r.addrNode[c.Target]
		}
		// The chunk's callees: CallRate AORs drawn at random (SIPp's own
		// RANDOM mode draws the same sequence in every process).
		var b strings.Builder
		b.WriteString("SEQUENTIAL\n")
		for i := 0; i < r.cfg.CallRate; i++ {
			fmt.Fprintf(&b, "%s\n", r.aor(r.rng.IntN(r.cfg.AORs)))
		}
		callees := filepath.Join(r.dir, fmt.Sprintf("callees-%d.csv", c.Index))
		if err := os.WriteFile(callees, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run = fleet.StartSIPpCounted(t, c.Target, "-sf", r.scenario("uac.xml"), "-inf", callees,
			"-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-m", strconv.Itoa(r.cfg.CallRate), "-r", strconv.Itoa(r.cfg.CallRate),
			"-d", strconv.Itoa(int(r.cfg.TalkTime/time.Millisecond)),
			"-recv_timeout", strconv.Itoa(int(r.cfg.RecvTimeout/time.Millisecond)), "-timeout", "120s")
	}

	done := make(chan EventResult, 1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	loadStart := time.Now()
	rep.LoadStart = loadStart
	baselineEnd := loadStart.Add(r.cfg.Baseline)
	churnEnd := baselineEnd.Add(r.cfg.Churn)
	nextEvent := baselineEnd
	running := false
	var tailEnd time.Time
	startChunk()
	for {
		now := time.Now()
		if !running && now.Before(churnEnd) && !now.Before(nextEvent) {
			plan := r.plan(len(rep.Events))
			nextEvent = now.Add(r.cfg.EventGapMin + time.Duration(r.rng.Int64N(int64(r.cfg.EventGapMax-r.cfg.EventGapMin)+1)))
			running = true
			go func() { done <- r.runEvent(plan) }()
		}
		if !running && !now.Before(churnEnd) {
			if tailEnd.IsZero() {
				tailEnd = now.Add(r.cfg.Tail)
			}
			if !now.Before(tailEnd) {
				break
			}
		}
		select {
		case <-tick.C:
			startChunk()
		case ev := <-done:
			running = false
			rep.Events = append(rep.Events, ev)
			t.Logf("event %d: %s", ev.N, ev.Line(loadStart))
		}
	}
	rep.LoadTook = time.Since(loadStart)
	for _, c := range chunks {
		if c.run != nil {
			c.Counts = c.run.Counts(t, 3*time.Minute)
			c.errLog = c.run.ErrorLog()
		}
	}
	r.mu.Lock()
	down := r.downs
	r.mu.Unlock()
	var windows []interval
	for _, ev := range rep.Events {
		windows = append(windows, interval{ev.KillAt, ev.SettledAt.Add(r.cfg.RecvTimeout + time.Second)})
	}
	// The baseline is the chunks whose calls were over before the first
	// event: started a second (the chunk) plus the talk time plus a
	// second of margin earlier.
	rep.Calls = tally(chunks, down, windows, baselineEnd.Add(-2*time.Second-r.cfg.TalkTime), r.cfg.RecvTimeout)
	for _, c := range chunks {
		if c.run != nil && c.Counts.Created != c.Counts.Successful+c.Counts.Failed {
			rep.Calls.ByReason["unfinished when SIPp stopped"] += c.Counts.Created - c.Counts.Successful - c.Counts.Failed
		}
	}
}
