package calls

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// bench holds what every batch needs: the SIPp binary, the scenario
// files and the injection file of REGISTER users.
type bench struct {
	sipp  string
	users string
}

// scenario returns the absolute path of a scenario file.
func scenario(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// callPath is where a batch of calls goes: a caller running scenario
// sends to target; the phone (uas.xml) listens on phone.
type callPath struct {
	name     string
	proxies  int // DSN nodes the call crosses (0: direct)
	scenario string
	target   string
	user     string
	phone    string // 127.0.0.1:port
}

// outcome is what one batch gave.
type outcome struct {
	ok      bool      // every call succeeded and the caller kept the rate
	callsOK bool      // every call succeeded
	failed  int       // calls that did not succeed
	note    string    // why it failed, or retransmissions when it passed
	setup   []float64 // INVITE -> 200 in microseconds, with timed
	retrans int
	wall    time.Duration
	// callerLoad and phoneLoad are the share of a core each SIPp used:
	// near 1, SIPp itself was the bottleneck.
	callerLoad, phoneLoad float64
	// drops is how many UDP datagrams the kernel dropped during the batch
	// because a receive buffer was full (all sockets of the machine).
	drops int64
}

// short sums the outcome up for the table: "" when it passed, else "12
// failed", "rate not kept" or what killed a process; with the datagrams
// the kernel dropped.
func (o outcome) short() string {
	var s string
	switch {
	case o.ok:
	case o.failed > 0:
		s = fmt.Sprintf("%d failed", o.failed)
	case o.callsOK:
		s = "rate not kept"
	default:
		s, _, _ = strings.Cut(o.note, ":")
	}
	if o.drops > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d UDP drops", o.drops)
	}
	return s
}

// udpDrops reads the kernel's count of UDP datagrams dropped for a full
// receive buffer (Udp RcvbufErrors in /proc/net/snmp); -1 when unknown.
func udpDrops() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var head []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// withDrops adds the datagrams dropped during a batch to its note.
func (o *outcome) withDrops(before int64) {
	after := udpDrops()
	if before < 0 || after < 0 {
		return
	}
	if o.drops = after - before; o.drops > 0 {
		if o.note != "" {
			o.note += "; "
		}
		o.note += fmt.Sprintf("%d UDP datagrams dropped on full receive buffers", o.drops)
	}
}

// limits of one batch, for n calls at rate with pause as talk time: SIPp's
// own global timeout, and how long the caller may take before the batch
// counts as not having kept the rate.
func limits(n, rate int, pause time.Duration) (timeout, kept time.Duration) {
	nominal := time.Duration(float64(n) / float64(rate) * float64(time.Second))
	return nominal + pause + 15*time.Second, nominal + nominal/10 + pause + time.Second
}

// callerArgs are the SIPp options common to every caller: its port (0:
// a fresh one),
// the rate, a bound on open calls (SIPp's default, 3 x talk time x rate,
// would throttle as soon as setup slows down; this one leaves 3 s of
// calls beyond the talk time, within SIPp's open-file limit), a 5 s answer
// timeout per message and the global timeout.
func callerArgs(t *testing.T, port, n, rate int, pause time.Duration) []string {
	timeout, _ := limits(n, rate, pause)
	open := min(max(int(float64(rate)*(pause.Seconds()+3)), 1000), 15000)
	if port == 0 {
		port = fleet.FreeUDPPort(t, "127.0.0.1")
	}
	return []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(open),
		"-d", strconv.FormatInt(pause.Milliseconds(), 10), "-recv_timeout", "5000",
		"-timeout", strconv.Itoa(int(math.Ceil(timeout.Seconds()))), "-timeout_error"}
}

// callBatch is a batch of calls under way.
type callBatch struct {
	drops         int64 // udpDrops at the start
	n, rate       int
	pause         time.Duration
	timed         bool
	phone, caller *sippRun
}

// calls runs n calls at rate along p (a fresh phone process for the
// batch) and judges them: both SIPp processes exit 0, the caller counts n
// successes and no failure, and it kept the rate.
func (b *bench) calls(t *testing.T, p callPath, n, rate int, pause time.Duration, timed bool) outcome {
	t.Helper()
	return b.startCalls(t, p, n, rate, pause, timed).finish()
}

// startCalls starts the phone, waits until it listens, and starts the
// caller.
func (b *bench) startCalls(t *testing.T, p callPath, n, rate int, pause time.Duration, timed bool) *callBatch {
	t.Helper()
	timeout, _ := limits(n, rate, pause)
	phone := startSIPp(t, b.sipp, false, "-sf", scenario(t, uasScenario), "-i", "127.0.0.1", "-p", portOf(t, p.phone),
		"-m", strconv.Itoa(n), "-recv_timeout", strconv.FormatInt((pause+5*time.Second).Milliseconds(), 10),
		"-timeout", strconv.Itoa(int(math.Ceil((timeout + 5*time.Second).Seconds()))), "-timeout_error")
	fleet.WaitUDPBound(t, p.phone, 5*time.Second)
	args := append([]string{p.target, "-sf", p.scenario, "-s", p.user, "-key", "domain", domain}, callerArgs(t, 0, n, rate, pause)...)
	return &callBatch{drops: udpDrops(), n: n, rate: rate, pause: pause, timed: timed, phone: phone,
		caller: startSIPp(t, b.sipp, timed, args...)}
}

// finish waits for the caller, then gives the phone the talk time and 5 s
// to see the last calls end, and judges the batch.
func (cb *callBatch) finish() outcome {
	timeout, _ := limits(cb.n, cb.rate, cb.pause)
	callerInTime := cb.caller.wait(timeout + 5*time.Second)
	phoneInTime := cb.phone.wait(cb.pause + 5*time.Second)
	o := judge(cb.n, cb.rate, cb.pause, cb.caller, callerInTime, cb.phone, phoneInTime)
	o.phoneLoad = cb.phone.load()
	o.withDrops(cb.drops)
	if cb.timed {
		o.setup = cb.caller.setupTimes()
	}
	return o
}

// registers sends n REGISTERs at rate to target from 127.0.0.1:port,
// the users of the injection file in turn from its first line; with a
// stub, a SIPp registrar stub listens on target for the batch. The same
// port keeps each user's Contact the same, so a second batch refreshes
// the bindings of the first (new Call-IDs) instead of adding to them.
func (b *bench) registers(t *testing.T, target string, stub bool, port, n, rate int) outcome {
	t.Helper()
	drops := udpDrops()
	var st *sippRun
	if stub {
		st = startSIPp(t, b.sipp, false, "-sf", scenario(t, "testdata/registrar_stub.xml"), "-i", "127.0.0.1", "-p", portOf(t, target))
		fleet.WaitUDPBound(t, target, 5*time.Second)
	}
	timeout, _ := limits(n, rate, 0)
	args := append([]string{target, "-sf", scenario(t, "testdata/register_users.xml"), "-inf", b.users}, callerArgs(t, port, n, rate, 0)...)
	caller := startSIPp(t, b.sipp, false, args...)
	inTime := caller.wait(timeout + 5*time.Second)
	if st != nil {
		st.kill() // it answers until told to stop; its exit status says nothing
	}
	o := judge(n, rate, 0, caller, inTime, nil, true)
	if st != nil {
		o.phoneLoad = st.load()
	}
	o.withDrops(drops)
	return o
}

// judge decides whether a batch passed: every call succeeded (callsOK:
// the phone, when there is one, exited 0 by itself too) and the caller
// kept the rate (ok).
func judge(n, rate int, pause time.Duration, caller *sippRun, callerInTime bool, phone *sippRun, phoneInTime bool) outcome {
	o := outcome{wall: caller.wall, callerLoad: caller.load()}
	c := caller.counters("SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)")
	o.retrans = c["Retransmissions(C)"]
	_, kept := limits(n, rate, pause)
	switch {
	case !callerInTime:
		o.note = "caller killed: did not finish in time"
	case c["FailedCall(C)"] != 0:
		o.failed = c["FailedCall(C)"]
		o.note = fmt.Sprintf("%d of %d failed: %s", c["FailedCall(C)"], n, caller.why())
	case caller.err != nil:
		o.note = "caller: " + caller.why()
	case c["SuccessfulCall(C)"] != n:
		o.failed = n - max(c["SuccessfulCall(C)"], 0)
		o.note = fmt.Sprintf("%d of %d succeeded", c["SuccessfulCall(C)"], n)
	case phone != nil && !phoneInTime:
		o.note = "phone killed: it did not see every call end"
	case phone != nil && phone.err != nil:
		o.note = "phone: " + phone.why()
	case caller.wall > kept:
		o.callsOK = true
		o.note = fmt.Sprintf("rate not kept: took %.1fs, at most %.1fs", caller.wall.Seconds(), kept.Seconds())
	default:
		o.callsOK, o.ok = true, true
		if o.retrans > 0 {
			o.note = fmt.Sprintf("%d retransmissions", o.retrans)
		}
	}
	return o
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
