package overload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// msg builds a SIP message from lines joined by CRLF, with the empty line
// and body appended and Content-Length set to the body's length unless a
// Content-Length line is given.
func msg(body string, lines ...string) []byte {
	hasCL := false
	for _, l := range lines {
		if low := strings.ToLower(l); strings.HasPrefix(low, "content-length") || strings.HasPrefix(low, "l:") {
			hasCL = true
		}
	}
	if !hasCL {
		lines = append(lines, fmt.Sprintf("Content-Length: %d", len(body)))
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + body)
}

// invite is an initial INVITE from 127.0.0.9:5070 with branch b.
func invite(b string) []byte {
	return msg("v=0\r\n",
		"INVITE sip:bob@dsn.test SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.9:5070;branch="+b+";rport",
		"Max-Forwards: 70",
		"From: <sip:alice@dsn.test>;tag=a1",
		"To: <sip:bob@dsn.test>",
		"Call-ID: call-"+b,
		"CSeq: 1 INVITE",
		"Content-Type: application/sdp")
}

// inDialog is a request of method m inside a dialog (To tag).
func inDialog(m, b string) []byte {
	return msg("",
		m+" sip:bob@127.0.0.9:5070 SIP/2.0",
		"Via: SIP/2.0/UDP 127.0.0.9:5070;branch="+b,
		"From: <sip:alice@dsn.test>;tag=a1",
		"To: <sip:bob@dsn.test>;tag=b2",
		"Call-ID: call-"+b,
		"CSeq: 2 "+m)
}

func head(t testing.TB, b []byte) Head {
	t.Helper()
	h, err := ParseHead(b)
	if err != nil {
		t.Fatalf("ParseHead(%q): %v", b, err)
	}
	return h
}

// fakeLoad is a settable load for the gate.
type fakeLoad struct{ l Load }

func (f *fakeLoad) get() Load { return f.l }

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// countMetrics records the gate's counts; safe for concurrent use (the
// TCP wrappers count from read goroutines).
type countMetrics struct {
	mu       sync.Mutex
	rejected map[string]int // method/reason
	dropped  map[string]int // transport/why
	conns    int
}

func newCountMetrics() *countMetrics {
	return &countMetrics{rejected: map[string]int{}, dropped: map[string]int{}}
}

func (m *countMetrics) Rejected(method string, r Reason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejected[method+"/"+string(r)]++
}

func (m *countMetrics) Dropped(tr string, why Drop) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped[tr+"/"+string(why)]++
}

func (m *countMetrics) Conns(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns = n
}

// rej, drop and open read the counts.
func (m *countMetrics) rej(k string) int  { m.mu.Lock(); defer m.mu.Unlock(); return m.rejected[k] }
func (m *countMetrics) drop(k string) int { m.mu.Lock(); defer m.mu.Unlock(); return m.dropped[k] }
func (m *countMetrics) drops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, v := range m.dropped {
		n += v
	}
	return n
}
func (m *countMetrics) open() int { m.mu.Lock(); defer m.mu.Unlock(); return m.conns }

var _ Metrics = (*countMetrics)(nil)

// testGate returns a gate with small limits, a fake load and clock.
func testGate(t testing.TB, mod func(*Config)) (*Gate, *fakeLoad, *fakeClock, *countMetrics) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxInflight, cfg.MaxGoroutines, cfg.MaxQueueDelay = 10, 1000, 50*time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	fl, fc, m := &fakeLoad{}, &fakeClock{t: time.Unix(1_700_000_000, 0)}, newCountMetrics()
	g, err := New(cfg, Deps{Load: fl.get, Now: fc.now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return g, fl, fc, m
}

// tortureMessages are the RFC 4475 torture messages kept by sip/proxy
// (from sipgo's testdata).
func tortureMessages(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("../proxy/testdata/torture/*.dat")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no torture messages in ../proxy/testdata/torture: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".dat")] = b
	}
	return out
}
