// Package overloadbench drives one dsn-node process beyond its capacity
// with SIPp and records how it copes: the calls/s it completes, the 503s
// it answers, its goroutines and resident memory before, during and after
// the overload, how long it takes to come back, and whether it kept
// answering OPTIONS meanwhile. deploy/e2e's TestOverload runs it with the
// CI settings and asserts the acceptance criteria; the benchmark in this
// directory runs it longer and prints the figures (README.md).
//
// It takes a fleet.TB, not *testing.T, like deploy/fleet.
package overloadbench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Options set up one run.
type Options struct {
	// IP is the node's loopback address; the phone, the caller and the
	// OPTIONS probe use IP+1, IP+2 and IP+3.
	IP string
	// Capacity is how long the capacity run lasts; CapacityCalls caps the
	// calls SIPp keeps open during it (-l).
	Capacity      time.Duration
	CapacityCalls int
	// Multiple times the measured capacity is offered during Duration.
	Multiple float64
	Duration time.Duration
	// Recovery bounds the wait, after the caller exits, for the node to
	// return within the margins below of its baseline.
	Recovery time.Duration
	// The node counts as recovered when nothing is in flight and its
	// goroutines, live heap and resident size are at most this far above
	// the baseline.
	GoroutineMargin int
	HeapMargin      float64 // bytes
	RSSMargin       float64 // bytes
	// MaxTransactions is the node's -max-transactions (0: its default).
	MaxTransactions int
	// NodeArgs are extra dsn-node flags.
	NodeArgs []string
	// NodeCPUs is the node's GOMAXPROCS (0: all CPUs). On a small machine
	// SIPp needs a CPU of its own to offer a multiple of what the node
	// completes.
	NodeCPUs int
	// Logf reports progress (nil: the TB's Logf).
	Logf func(format string, args ...any)
	// ProfileDir, when set, runs the node with -pprof and saves heap and
	// goroutine profiles there: in the middle of the overload, when SIPp
	// exits and at the end of the recovery wait.
	ProfileDir string
}

// Sample is the node's state at one moment (from /metrics).
type Sample struct {
	At         time.Duration // since the overload started
	Goroutines float64
	RSS        float64 // bytes
	Heap       float64 // live heap after the last GC, bytes
	HeapAlloc  float64 // heap allocated, garbage not yet collected included, bytes
	InFlight   float64
	// Transactions is the node's transaction window (dsn_sip_transactions).
	Transactions float64
	QueueDelay   float64 // seconds
	Rejected     float64 // dsn_sip_overload_rejected_total
}

// Probe is one OPTIONS sent to the node during the overload.
type Probe struct {
	At      time.Duration
	Status  int // 0: no answer
	Latency time.Duration
}

// Result is what one run measured.
type Result struct {
	// Capacity is the calls/s completed (200 to the INVITE) in the
	// capacity run.
	Capacity float64
	// Target and Offered are the overload's intended and achieved call
	// rates (calls SIPp created over Duration).
	Target, Offered float64
	// SIPp's totals for the overload run.
	Created, Answered, Got503, Failed int
	// SIPpErrors are the first entries of SIPp's error log.
	SIPpErrors []string
	// Rejected is the node's dsn_sip_overload_rejected_total at the end,
	// by reason.
	Rejected map[string]float64
	// Before is the baseline (the node with its phone registered, before
	// any call), Peak the highest values during and after the overload,
	// After the last sample.
	Before, Peak, After Sample
	// Samples are taken every second from the start of the overload.
	Samples []Sample
	Probes  []Probe
	// LoadEnd is when SIPp exited (since the overload started);
	// Recovered how long after that the node was back within the
	// margins (-1: not within Options.Recovery).
	LoadEnd, Recovered time.Duration
	// Alive is false when the node process died.
	Alive bool
}

const domain = "dsn.overload"

// scenarios are the SIPp scenario files (deploy/e2e/testdata and
// sip/proxy/testdata/sipp), relative to this package's directory.
func scenario(name string) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	switch name {
	case "register.xml":
		return filepath.Join(dir, "../../sip/proxy/testdata/sipp", name)
	}
	return filepath.Join(dir, "../../deploy/e2e/testdata", name)
}

// Run starts a node (in a fleet of its own) and measures one overload. It
// fails t only when the run cannot be made (a process does not start,
// SIPp writes no statistics); the caller judges the Result.
func Run(t fleet.TB, o Options) Result {
	t.Helper()
	logf := o.Logf
	if logf == nil {
		logf = t.Logf
	}
	unlock := exclusive(t)
	defer unlock()
	base := net.ParseIP(o.IP).To4()
	ip := func(d byte) string { return net.IPv4(base[0], base[1], base[2], base[3]+d).String() }
	phoneIP, callerIP, probeIP := ip(1), ip(2), ip(3)
	args := append([]string{"-log-level", "info"}, o.NodeArgs...)
	if o.MaxTransactions > 0 {
		args = append(args, "-max-transactions", strconv.Itoa(o.MaxTransactions))
	}
	if o.ProfileDir != "" {
		args = append(args, "-pprof")
	}
	p := startNode(t, o, args)
	res := Result{Rejected: map[string]float64{}}

	// The phone: registered, then answering on the registered port.
	phonePort := strconv.Itoa(fleet.FreeUDPPort(t, phoneIP))
	fleet.SIPp(t, p.SIP, "-sf", scenario("register.xml"), "-i", phoneIP, "-p", phonePort,
		"-s", "bob", "-key", "domain", domain, "-m", "1")
	fleet.StartSIPp(t, "", "-sf", scenario("uas_overload.xml"), "-i", phoneIP, "-p", phonePort,
		"-l", "100000")
	fleet.WaitUDPBound(t, net.JoinHostPort(phoneIP, phonePort), 10*time.Second)

	// Baseline: the node with its phone registered, before any call.
	res.Before = settle(t, p, 30*time.Second)
	logf("baseline: %d goroutines, RSS %.0f MiB, heap %.0f MiB", int(res.Before.Goroutines), res.Before.RSS/(1<<20), res.Before.Heap/(1<<20))

	// Capacity: SIPp keeps CapacityCalls calls open and makes them as fast
	// as they complete.
	capRun := startCaller(t, p.SIP, callerIP, 100000, int(o.Capacity.Seconds()*100000),
		"-l", strconv.Itoa(o.CapacityCalls), "-timeout", strconv.Itoa(int(o.Capacity.Seconds()))+"s")
	cc := capRun.wait(t, o.Capacity+90*time.Second)
	res.Capacity = float64(cc.answered) / o.Capacity.Seconds()
	logf("capacity run: %d calls answered in %v (%.0f calls/s), %d 503, %d failed", cc.answered, o.Capacity, res.Capacity, cc.got503, cc.failed)
	if res.Capacity < 10 {
		t.Fatalf("capacity run completed %d calls: nothing to overload (SIPp errors: %q)", cc.answered, cc.errors)
	}

	// The overload starts once the capacity run's calls are over.
	settle(t, p, 60*time.Second)

	// Overload.
	res.Target = o.Multiple * res.Capacity
	rate := int(math.Round(res.Target))
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(2)
	go func() { // the node's state every second
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if s, err := sample(p); err == nil {
				s.At = time.Since(start)
				mu.Lock()
				res.Samples = append(res.Samples, s)
				mu.Unlock()
			}
		}
	}()
	go func() { // OPTIONS to the node every 500 ms
		defer wg.Done()
		pr, err := NewProber(probeIP, p.SIP)
		if err != nil {
			logf("probe: %v", err)
			return
		}
		defer pr.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			at := time.Since(start)
			code, lat := pr.Options()
			mu.Lock()
			res.Probes = append(res.Probes, Probe{At: at, Status: code, Latency: lat})
			mu.Unlock()
		}
	}()
	// A call whose messages the overloaded network lost gives up after 4
	// retransmissions (7.5 s) rather than 7 (up to 32 s): SIPp exits soon
	// after the load.
	// SIPp falls behind its rate when it cannot keep up; the run lasts
	// Duration all the same: SIGUSR1 stops new calls, and SIPp exits once
	// the calls it made are over.
	ov := startCaller(t, p.SIP, callerIP, rate, int(float64(rate)*o.Duration.Seconds()),
		"-max_invite_retrans", "4", "-max_non_invite_retrans", "4")
	select {
	case <-time.After(o.Duration / 2):
		saveProfiles(p, o, "mid")
		select {
		case <-time.After(o.Duration - o.Duration/2):
			ov.cmd.Process.Signal(syscall.SIGUSR1)
		case err := <-ov.done:
			ov.done <- err
		}
	case err := <-ov.done:
		ov.done <- err
	}
	oc := ov.wait(t, 120*time.Second)
	saveProfiles(p, o, "loadend")
	if oc.created > 0 {
		oc.offered = float64(oc.created) / o.Duration.Seconds()
	}
	res.LoadEnd = time.Since(start)
	res.Created, res.Answered, res.Got503, res.Failed, res.SIPpErrors = oc.created, oc.answered, oc.got503, oc.failed, oc.errors
	res.Offered = oc.offered
	logf("overload: target %.0f calls/s, offered %.0f calls/s; %d calls, %d answered, %d got 503, %d failed; SIPp exited after %v",
		res.Target, res.Offered, res.Created, res.Answered, res.Got503, res.Failed, res.LoadEnd.Round(time.Second))

	// Recovery: back within the margins of the baseline.
	res.Recovered = -1
	deadline := time.Now().Add(o.Recovery)
	for time.Now().Before(deadline) && p.Alive() {
		s, err := sample(p)
		mu.Lock()
		ok := err == nil && res.recovered(s, o)
		mu.Unlock()
		if ok {
			res.Recovered = time.Since(start) - res.LoadEnd
			break
		}
		time.Sleep(time.Second)
	}
	close(stop)
	wg.Wait()
	saveProfiles(p, o, "after")
	res.Alive = p.Alive()
	if s, err := sample(p); err == nil {
		s.At = time.Since(start)
		res.Samples = append(res.Samples, s)
	}
	for _, s := range res.Samples {
		res.Peak.Goroutines = max(res.Peak.Goroutines, s.Goroutines)
		res.Peak.RSS = max(res.Peak.RSS, s.RSS)
		res.Peak.Heap = max(res.Peak.Heap, s.Heap)
		res.Peak.HeapAlloc = max(res.Peak.HeapAlloc, s.HeapAlloc)
		res.Peak.Transactions = max(res.Peak.Transactions, s.Transactions)
		res.Peak.InFlight = max(res.Peak.InFlight, s.InFlight)
		res.Peak.QueueDelay = max(res.Peak.QueueDelay, s.QueueDelay)
	}
	if n := len(res.Samples); n > 0 {
		res.After = res.Samples[n-1]
	}
	if m, err := p.Metrics(); err == nil {
		for k, v := range m {
			if strings.HasPrefix(k, "dsn_sip_overload_rejected_total{") {
				res.Rejected[label(k, "reason")] += v
			}
		}
	}
	return res
}

// startNode starts the node with GOMAXPROCS set to o.NodeCPUs. The
// variable is set in this process's environment only while the child
// starts (the harness passes its environment on); Run is not used by
// parallel tests.
func startNode(t fleet.TB, o Options, args []string) *fleet.Proc {
	t.Helper()
	if o.NodeCPUs > 0 {
		old, had := os.LookupEnv("GOMAXPROCS")
		os.Setenv("GOMAXPROCS", strconv.Itoa(o.NodeCPUs))
		defer func() {
			if had {
				os.Setenv("GOMAXPROCS", old)
			} else {
				os.Unsetenv("GOMAXPROCS")
			}
		}()
	}
	return fleet.New(t, domain).Start("ovl", o.IP, nil, args...)
}

// saveProfiles saves the node's heap and goroutine profiles in
// o.ProfileDir as <when>-heap.pb.gz and <when>-goroutine.txt (best effort).
func saveProfiles(p *fleet.Proc, o Options, when string) {
	if o.ProfileDir == "" {
		return
	}
	c := http.Client{Timeout: 30 * time.Second}
	for _, f := range []struct{ path, file string }{
		{"/debug/pprof/heap?gc=1", when + "-heap.pb.gz"},
		{"/debug/pprof/goroutine?debug=1", when + "-goroutine.txt"},
	} {
		res, err := c.Get("http://" + p.Admin + f.path)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil && res.StatusCode == http.StatusOK {
			_ = os.WriteFile(filepath.Join(o.ProfileDir, f.file), b, 0o644)
		}
	}
}

// TxBytes bounds the live heap one unit of the node's transaction window
// holds for calls as uac_overload.xml makes them: the server transaction
// (request, responses, timers), the forwarded copy's client transaction
// and the proxy's call state, and the calls in progress with them.
// Measured: 10.6-14.4 KiB (README.md).
const TxBytes = 20 << 10

// HeapBound is the live heap a node with -max-transactions
// maxTransactions may reach under any rate of such calls: its baseline
// and TxBytes per unit of the window.
func HeapBound(before Sample, maxTransactions int) float64 {
	return before.Heap + float64(maxTransactions)*TxBytes
}

// recovered reports whether s is back within the margins of the baseline.
func (r *Result) recovered(s Sample, o Options) bool {
	return s.InFlight == 0 && s.Goroutines <= r.Before.Goroutines+float64(o.GoroutineMargin) &&
		s.Heap <= r.Before.Heap+o.HeapMargin && s.RSS <= r.Before.RSS+o.RSSMargin
}

// exclusive serialises overload runs across test processes (deploy/e2e
// and bench/overload may run at once under go test ./...): two at a time
// would each measure the other.
func exclusive(t fleet.TB) func() {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "dsn-overload-run.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// label returns the value of label l in a sample name such as
// metric{a="x",b="y"}.
func label(sample, l string) string {
	i := strings.Index(sample, l+`="`)
	if i < 0 {
		return ""
	}
	rest := sample[i+len(l)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

func sample(p *fleet.Proc) (Sample, error) {
	m, err := p.Metrics()
	if err != nil {
		return Sample{}, err
	}
	return Sample{
		Goroutines:   m["go_goroutines"],
		RSS:          m["process_resident_memory_bytes"],
		Heap:         m["dsn_heap_live_bytes"],
		HeapAlloc:    m["go_memstats_heap_alloc_bytes"],
		Transactions: m["dsn_sip_transactions"],
		InFlight:     m["dsn_sip_inflight_requests"],
		QueueDelay:   m["dsn_sip_queue_delay_seconds"],
		Rejected:     fleet.MetricSum(m, "dsn_sip_overload_rejected_total"),
	}, nil
}

// settle waits until the node's goroutine count has not changed by more
// than 2 for 3 samples and nothing is in flight, and returns the last
// sample.
func settle(t fleet.TB, p *fleet.Proc, d time.Duration) Sample {
	t.Helper()
	deadline := time.Now().Add(d)
	var prev []float64
	for {
		s, err := sample(p)
		if err == nil {
			prev = append(prev, s.Goroutines)
			if n := len(prev); n >= 3 && s.InFlight == 0 &&
				math.Abs(prev[n-1]-prev[n-3]) <= 2 && math.Abs(prev[n-1]-prev[n-2]) <= 2 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not settle within %v (goroutines %v, err %v)", d, prev, err)
		}
		time.Sleep(time.Second)
	}
}

// caller is a SIPp caller (uac_overload.xml) run with its statistics in a
// directory of its own.
type caller struct {
	cmd  *exec.Cmd
	dir  string
	out  *strings.Builder
	done chan error
}

type callerCounts struct {
	created, answered, got503, failed int
	offered                           float64
	errors                            []string
}

// startCaller makes calls calls at rate calls/s to bob through target.
func startCaller(t fleet.TB, target, ip string, rate, calls int, extra ...string) *caller {
	t.Helper()
	bin := fleet.RequireTool(t, "sipp")
	c := &caller{dir: t.TempDir(), out: &strings.Builder{}, done: make(chan error, 1)}
	args := append([]string{target, "-sf", scenario("uac_overload.xml"), "-i", ip, "-p", strconv.Itoa(fleet.FreeUDPPort(t, ip)),
		"-s", "bob", "-key", "domain", domain, "-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(calls), "-d", "100",
		"-nostdin", "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_counts", "-trace_err", "-error_file", "errors.log"}, extra...)
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-c.done:
			c.done <- err
		default:
			c.cmd.Process.Kill()
		}
	})
	return c
}

// wait waits for SIPp to exit (at most d) and reads its statistics.
func (c *caller) wait(t fleet.TB, d time.Duration) callerCounts {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(d):
		c.cmd.Process.Kill()
		c.done <- <-c.done
		t.Fatalf("sipp %v did not finish within %v:\n%s", c.cmd.Args, d, c.out.String())
	}
	var cc callerCounts
	stat, err := readCSV(filepath.Join(c.dir, "stat.csv"))
	if err != nil || len(stat) == 0 {
		t.Fatalf("sipp statistics: %v\n%s", err, c.out.String())
	}
	last := stat[len(stat)-1]
	cc.created, cc.failed = int(last["TotalCallCreated"]), int(last["FailedCall(C)"])
	counts, _ := filepath.Glob(filepath.Join(c.dir, "*_counts.csv"))
	if len(counts) == 1 {
		if rows, err := readCSV(counts[0]); err == nil && len(rows) > 0 {
			end := rows[len(rows)-1]
			cc.got503 = int(column(end, "_503_Recv", 0))
			cc.answered = int(column(end, "_200_Recv", 0)) // the INVITE's 200 comes first
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, "errors.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && len(cc.errors) < 10 {
				cc.errors = append(cc.errors, l)
			}
		}
	}
	return cc
}

// readCSV reads a SIPp ';'-separated file into rows keyed by column name
// (numeric columns only).
func readCSV(path string) ([]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var head []string
	var rows []map[string]float64
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if head == nil {
			head = fields
			continue
		}
		row := map[string]float64{}
		for i, h := range head {
			if i >= len(fields) {
				break
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(fields[i]), 64); err == nil {
				row[h] = v
			}
		}
		rows = append(rows, row)
	}
	if head == nil {
		return nil, errors.New("empty file")
	}
	return rows, sc.Err()
}

// column returns the n-th column (in name order of the scenario's message
// index) whose name ends in suffix.
func column(row map[string]float64, suffix string, n int) float64 {
	var names []string
	for k := range row {
		if strings.HasSuffix(k, suffix) {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return msgIndex(names[i]) < msgIndex(names[j]) })
	if n < len(names) {
		return row[names[n]]
	}
	return 0
}

func msgIndex(col string) int {
	i, _ := strconv.Atoi(col[:strings.IndexByte(col, '_')])
	return i
}

// Prober sends OPTIONS to a node over UDP from a socket of its own and
// waits for the final response, retransmitting as RFC 3261 17.1.2.2 does
// (500 ms, doubling: 4 retransmissions) for at most 8 s. Not safe for
// concurrent use.
type Prober struct {
	conn   *net.UDPConn
	to     *net.UDPAddr
	target string
	n      int
}

// NewProber binds a UDP socket on ip for probing target (host:port).
func NewProber(ip, target string) (*Prober, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, err
	}
	to, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Prober{conn: c, to: to, target: target}, nil
}

// Close closes the socket.
func (p *Prober) Close() { p.conn.Close() }

// Options sends one OPTIONS and returns the final status (0: none within
// 8 s) and how long it took.
func (p *Prober) Options() (int, time.Duration) {
	p.n++
	branch := fmt.Sprintf("z9hG4bKprobe%d-%d", os.Getpid(), p.n)
	req := OptionsRequest(p.target, p.conn.LocalAddr().String(), "UDP", branch)
	start := time.Now()
	buf := make([]byte, 65536)
	wait := 500 * time.Millisecond
	for time.Since(start) < 7*time.Second {
		if _, err := p.conn.WriteToUDP(req, p.to); err != nil {
			return 0, time.Since(start)
		}
		p.conn.SetReadDeadline(time.Now().Add(wait))
		for {
			n, _, err := p.conn.ReadFromUDP(buf)
			if err != nil {
				break // retransmit
			}
			if code := FinalStatus(buf[:n], branch); code != 0 {
				return code, time.Since(start)
			}
		}
		wait = min(2*wait, 4*time.Second)
	}
	return 0, time.Since(start)
}

// OptionsRequest is an OPTIONS addressed to the node at target (its health
// probe), sent from local over transport with Via branch.
func OptionsRequest(target, local, transport, branch string) []byte {
	return []byte(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@%s>;tag=p1\r\nTo: <sip:%s>\r\nCall-ID: probe-%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		target, transport, local, branch, domain, target, branch))
}

// FinalStatus returns the status of b when it is a final response whose
// top Via has branch, else 0.
func FinalStatus(b []byte, branch string) int {
	m, err := sip.ParseMessage(b)
	if err != nil {
		return 0
	}
	res, ok := m.(*sip.Response)
	if !ok || res.StatusCode < 200 || res.Via() == nil || !strings.Contains(res.Via().Value(), branch) {
		return 0
	}
	return res.StatusCode
}

// Table renders a run as the Markdown table of README.md.
func Table(r Result, o Options) string {
	var b strings.Builder
	row := func(what, figure string) { fmt.Fprintf(&b, "| %s | %s |\n", what, figure) }
	mib := func(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }
	b.WriteString("| what | figure |\n|---|---|\n")
	row("capacity (calls/s answered, SIPp keeping 1,000 calls open)", fmt.Sprintf("%.0f", r.Capacity))
	row("overload offered (calls/s SIPp created) / target", fmt.Sprintf("%.0f (%.1fx capacity) / %.0f, for %v", r.Offered, r.Offered/r.Capacity, r.Target, o.Duration))
	row("calls: created / answered / 503 / failed", fmt.Sprintf("%d / %d / %d / %d", r.Created, r.Answered, r.Got503, r.Failed))
	var reasons []string
	for k, v := range r.Rejected {
		reasons = append(reasons, fmt.Sprintf("%s %.0f", k, v))
	}
	sort.Strings(reasons)
	row("503s the node counted, by limit", strings.Join(reasons, ", "))
	unanswered, slowest := 0, time.Duration(0)
	for _, p := range r.Probes {
		if p.Status == 0 {
			unanswered++
		}
		slowest = max(slowest, p.Latency)
	}
	row("OPTIONS probes during the run: sent / unanswered / slowest", fmt.Sprintf("%d / %d / %v", len(r.Probes), unanswered, slowest.Round(time.Millisecond)))
	row("goroutines: before / peak / after", fmt.Sprintf("%.0f / %.0f / %.0f", r.Before.Goroutines, r.Peak.Goroutines, r.After.Goroutines))
	row("RSS: before / peak / after", fmt.Sprintf("%s / %s / %s", mib(r.Before.RSS), mib(r.Peak.RSS), mib(r.After.RSS)))
	row("live heap: before / peak / after", fmt.Sprintf("%s / %s / %s", mib(r.Before.Heap), mib(r.Peak.Heap), mib(r.After.Heap)))
	row("heap allocated, garbage included: peak", mib(r.Peak.HeapAlloc))
	row("transaction window: peak (limit -max-transactions)", fmt.Sprintf("%.0f (%d)", r.Peak.Transactions, o.MaxTransactions))
	row("peak in flight / peak queue delay (p99)", fmt.Sprintf("%.0f / %.0f ms", r.Peak.InFlight, r.Peak.QueueDelay*1000))
	rec := "not within " + o.Recovery.String()
	if r.Recovered >= 0 {
		rec = r.Recovered.Round(time.Second).String()
	}
	row("SIPp exited after / back to baseline after that", fmt.Sprintf("%v / %s", r.LoadEnd.Round(time.Second), rec))
	return b.String()
}
