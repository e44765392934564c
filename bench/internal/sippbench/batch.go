package sippbench

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Bench holds what every batch needs: the SIPp binary, the domain the
// scenarios put in their URIs (-key domain), the scenario files
// (absolute paths) and the injection file of REGISTER users.
type Bench struct {
	// SIPp is the sipp binary.
	SIPp string
	// Domain is the SIP domain of callers and callees.
	Domain string
	// UAS is the phone's scenario: answers INVITE with 180 and 200, takes
	// ACK and BYE (sip/proxy/testdata/sipp/uas.xml).
	UAS string
	// RegisterUsers sends one REGISTER per call for the users of an
	// injection file (bench/calls/testdata/register_users.xml).
	RegisterUsers string
	// RegistrarStub answers every REGISTER with 200 and stores nothing
	// (bench/calls/testdata/registrar_stub.xml).
	RegistrarStub string
	// Users is the injection file of RegisterUsers (fleet.WriteUsers).
	Users string
}

// Validate checks that the binary and the files are there.
func (b *Bench) Validate() error {
	if b.SIPp == "" || b.Domain == "" {
		return errors.New("sippbench: SIPp and Domain are required")
	}
	for _, f := range []string{b.SIPp, b.UAS, b.RegisterUsers, b.RegistrarStub, b.Users} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("sippbench: %w", err)
		}
	}
	return nil
}

// CallPath is where a batch of calls goes: a caller running Scenario
// sends to Target; the phone (the UAS scenario) listens on Phone.
type CallPath struct {
	Name     string
	Proxies  int // proxies the call crosses (0: direct)
	Scenario string
	Target   string
	User     string
	Phone    string // 127.0.0.1:port
}

// Outcome is what one batch gave.
type Outcome struct {
	OK      bool      // every call succeeded and the caller kept the rate
	CallsOK bool      // every call succeeded
	Failed  int       // calls that did not succeed
	Note    string    // why it failed, or retransmissions when it passed
	Setup   []float64 // INVITE -> 200 in microseconds, with timed
	Retrans int
	Wall    time.Duration
	// CallerLoad and PhoneLoad are the share of a core each SIPp used:
	// near 1, SIPp itself was the bottleneck.
	CallerLoad, PhoneLoad float64
	// Drops is how many UDP datagrams the kernel dropped during the batch
	// because a receive buffer was full (all sockets of the machine).
	Drops int64
}

// Short sums the outcome up for a table: "" when it passed, else "12
// failed", "rate not kept" or what killed a process; with the datagrams
// the kernel dropped.
func (o Outcome) Short() string {
	var s string
	switch {
	case o.OK:
	case o.Failed > 0:
		s = fmt.Sprintf("%d failed", o.Failed)
	case o.CallsOK:
		s = "rate not kept"
	default:
		s, _, _ = strings.Cut(o.Note, ":")
	}
	if o.Drops > 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d UDP drops", o.Drops)
	}
	return s
}

// UDPDrops reads the kernel's count of UDP datagrams dropped for a full
// receive buffer (Udp RcvbufErrors in /proc/net/snmp); -1 when unknown.
func UDPDrops() int64 {
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
func (o *Outcome) withDrops(before int64) {
	after := UDPDrops()
	if before < 0 || after < 0 {
		return
	}
	if o.Drops = after - before; o.Drops > 0 {
		if o.Note != "" {
			o.Note += "; "
		}
		o.Note += fmt.Sprintf("%d UDP datagrams dropped on full receive buffers", o.Drops)
	}
}

// Limits of one batch, for n calls at rate with pause as talk time:
// SIPp's own global timeout, and how long the caller may take before the
// batch counts as not having kept the rate.
func Limits(n, rate int, pause time.Duration) (timeout, kept time.Duration) {
	nominal := time.Duration(float64(n) / float64(rate) * float64(time.Second))
	return nominal + pause + 15*time.Second, nominal + nominal/10 + pause + time.Second
}

// CallerArgs are the SIPp options common to every caller: its port (0:
// a fresh one), the rate, a bound on open calls (SIPp's default, 3 x talk
// time x rate, would throttle as soon as setup slows down; this one leaves
// 3 s of calls beyond the talk time, within SIPp's open-file limit), a 5 s
// answer timeout per message and the global timeout.
func CallerArgs(t fleet.TB, port, n, rate int, pause time.Duration) []string {
	timeout, _ := Limits(n, rate, pause)
	open := min(max(int(float64(rate)*(pause.Seconds()+3)), 1000), 15000)
	if port == 0 {
		port = fleet.FreeUDPPort(t, "127.0.0.1")
	}
	return []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(open),
		"-d", strconv.FormatInt(pause.Milliseconds(), 10), "-recv_timeout", "5000",
		"-timeout", strconv.Itoa(int(math.Ceil(timeout.Seconds()))), "-timeout_error"}
}

// CallBatch is a batch of calls under way.
type CallBatch struct {
	drops   int64 // UDPDrops at the start
	n, rate int
	pause   time.Duration
	timed   bool
	// Phone and Caller are the two SIPp processes.
	Phone, Caller *Proc
}

// Calls runs n calls at rate along p (a fresh phone process for the
// batch) and judges them: both SIPp processes exit 0, the caller counts n
// successes and no failure, and it kept the rate. With timed, the caller
// logs its setup times (the scenario must log them).
func (b *Bench) Calls(t fleet.TB, p CallPath, n, rate int, pause time.Duration, timed bool) Outcome {
	t.Helper()
	return b.StartCalls(t, p, n, rate, pause, timed).Finish()
}

// StartCalls starts the phone, waits until it listens, and starts the
// caller.
func (b *Bench) StartCalls(t fleet.TB, p CallPath, n, rate int, pause time.Duration, timed bool) *CallBatch {
	t.Helper()
	timeout, _ := Limits(n, rate, pause)
	phone := Start(t, b.SIPp, false, "-sf", b.UAS, "-i", "127.0.0.1", "-p", PortOf(t, p.Phone),
		"-m", strconv.Itoa(n), "-recv_timeout", strconv.FormatInt((pause+5*time.Second).Milliseconds(), 10),
		"-timeout", strconv.Itoa(int(math.Ceil((timeout + 5*time.Second).Seconds()))), "-timeout_error")
	fleet.WaitUDPBound(t, p.Phone, 5*time.Second)
	args := append([]string{p.Target, "-sf", p.Scenario, "-s", p.User, "-key", "domain", b.Domain}, CallerArgs(t, 0, n, rate, pause)...)
	return &CallBatch{drops: UDPDrops(), n: n, rate: rate, pause: pause, timed: timed, Phone: phone,
		Caller: Start(t, b.SIPp, timed, args...)}
}

// Finish waits for the caller, then gives the phone the talk time and 5 s
// to see the last calls end, and judges the batch.
func (cb *CallBatch) Finish() Outcome {
	timeout, _ := Limits(cb.n, cb.rate, cb.pause)
	callerInTime := cb.Caller.Wait(timeout + 5*time.Second)
	phoneInTime := cb.Phone.Wait(cb.pause + 5*time.Second)
	o := judge(cb.n, cb.rate, cb.pause, cb.Caller, callerInTime, cb.Phone, phoneInTime)
	o.PhoneLoad = cb.Phone.Load()
	o.withDrops(cb.drops)
	if cb.timed {
		o.Setup = cb.Caller.SetupTimes()
	}
	return o
}

// Registers sends n REGISTERs at rate to target from 127.0.0.1:port,
// the users of the injection file in turn from its first line; with a
// stub, a SIPp registrar stub listens on target for the batch. The same
// port keeps each user's Contact the same, so a second batch refreshes
// the bindings of the first (new Call-IDs) instead of adding to them.
func (b *Bench) Registers(t fleet.TB, target string, stub bool, port, n, rate int) Outcome {
	return b.RegistersFrom(t, target, stub, port, n, rate, b.Users)
}

// RegistersFrom is Registers with another injection file.
func (b *Bench) RegistersFrom(t fleet.TB, target string, stub bool, port, n, rate int, users string) Outcome {
	t.Helper()
	drops := UDPDrops()
	var st *Proc
	if stub {
		st = Start(t, b.SIPp, false, "-sf", b.RegistrarStub, "-i", "127.0.0.1", "-p", PortOf(t, target))
		fleet.WaitUDPBound(t, target, 5*time.Second)
	}
	timeout, _ := Limits(n, rate, 0)
	args := append([]string{target, "-sf", b.RegisterUsers, "-inf", users}, CallerArgs(t, port, n, rate, 0)...)
	caller := Start(t, b.SIPp, false, args...)
	inTime := caller.Wait(timeout + 5*time.Second)
	if st != nil {
		st.Kill() // it answers until told to stop; its exit status says nothing
	}
	o := judge(n, rate, 0, caller, inTime, nil, true)
	if st != nil {
		o.PhoneLoad = st.Load()
	}
	o.withDrops(drops)
	return o
}

// judge decides whether a batch passed: every call succeeded (CallsOK:
// the phone, when there is one, exited 0 by itself too) and the caller
// kept the rate (OK).
func judge(n, rate int, pause time.Duration, caller *Proc, callerInTime bool, phone *Proc, phoneInTime bool) Outcome {
	o := Outcome{Wall: caller.wall, CallerLoad: caller.Load()}
	c := caller.Counters("SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)")
	o.Retrans = c["Retransmissions(C)"]
	_, kept := Limits(n, rate, pause)
	switch {
	case !callerInTime:
		o.Note = "caller killed: did not finish in time"
	case c["FailedCall(C)"] != 0:
		o.Failed = c["FailedCall(C)"]
		o.Note = fmt.Sprintf("%d of %d failed: %s", c["FailedCall(C)"], n, caller.Why())
	case caller.err != nil:
		o.Note = "caller: " + caller.Why()
	case c["SuccessfulCall(C)"] != n:
		o.Failed = n - max(c["SuccessfulCall(C)"], 0)
		o.Note = fmt.Sprintf("%d of %d succeeded", c["SuccessfulCall(C)"], n)
	case phone != nil && !phoneInTime:
		o.Note = "phone killed: it did not see every call end"
	case phone != nil && phone.err != nil:
		o.Note = "phone: " + phone.Why()
	case caller.wall > kept:
		o.CallsOK = true
		o.Note = fmt.Sprintf("rate not kept: took %.1fs, at most %.1fs", caller.wall.Seconds(), kept.Seconds())
	default:
		o.CallsOK, o.OK = true, true
		if o.Retrans > 0 {
			o.Note = fmt.Sprintf("%d retransmissions", o.Retrans)
		}
	}
	return o
}

// PortOf is the port of a host:port address.
func PortOf(t fleet.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
