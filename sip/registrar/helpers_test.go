package registrar

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap/zaptest"
)

// t0 is the fake clock's start; whole milliseconds, as the codec keeps.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a Registrar on a MemStore with a fake clock.
type testEnv struct {
	reg   *Registrar
	store *MemStore
	clock *fakeClock
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Domains = []string{"dsn.test", "10.0.0.1"}
	return cfg
}

func newEnv(t testing.TB, cfg Config, wrap func(BindingStore) BindingStore, opts ...Option) *testEnv {
	t.Helper()
	clock := newFakeClock()
	store := NewMemStore(clock.Now)
	var bs BindingStore = store
	if wrap != nil {
		bs = wrap(store)
	}
	reg, err := New(cfg, bs, clock.Now, zaptest.NewLogger(t), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{reg: reg, store: store, clock: clock}
}

// phoneSrc is where test REGISTERs come from.
var phoneSrc = Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}

// msg describes a REGISTER (or another request) as it travels on the wire.
type msg struct {
	method   string   // default REGISTER
	ruri     string   // default sip:dsn.test
	to       string   // default <sip:alice@dsn.test>
	callID   string   // default "call-a"
	cseq     int      // default 1
	contacts []string // one Contact header line each
	headers  []string // extra header lines, "Name: value"
	omit     string   // a mandatory header to leave out
}

func (m msg) text() string {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	method := def(m.method, "REGISTER")
	cseq := m.cseq
	if cseq == 0 {
		cseq = 1
	}
	callID := def(m.callID, "call-a")
	lines := []string{
		fmt.Sprintf("%s %s SIP/2.0", method, def(m.ruri, "sip:dsn.test")),
		fmt.Sprintf("Via: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bK-%s-%d", callID, cseq),
		"Max-Forwards: 70",
		"From: <sip:alice@dsn.test>;tag=f1",
		"To: " + def(m.to, "<sip:alice@dsn.test>"),
		"Call-ID: " + callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
	}
	for _, c := range m.contacts {
		lines = append(lines, "Contact: "+c)
	}
	lines = append(lines, m.headers...)
	lines = append(lines, "Content-Length: 0")
	var out []string
	for _, l := range lines {
		if m.omit == "" || !strings.HasPrefix(l, m.omit+":") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n") + "\r\n\r\n"
}

// request parses m as sipgo's transport layer would.
func (m msg) request(t testing.TB) *sip.Request {
	t.Helper()
	parsed, err := sip.ParseMessage([]byte(m.text()))
	if err != nil {
		t.Fatalf("parse test request: %v\n%s", err, m.text())
	}
	req, ok := parsed.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %T", parsed)
	}
	return req
}

// do sends m through Handle and returns the response as the UA would
// parse it off the wire.
func (e *testEnv) do(t testing.TB, m msg) *sip.Response {
	t.Helper()
	res := e.reg.Handle(context.Background(), m.request(t), phoneSrc)
	if res == nil {
		t.Fatal("Handle returned nil")
	}
	parsed, err := sip.ParseMessage([]byte(res.String()))
	if err != nil {
		t.Fatalf("response does not parse: %v\n%s", err, res.String())
	}
	return parsed.(*sip.Response)
}

// mustOK sends m and fails unless the answer is 200.
func (e *testEnv) mustOK(t testing.TB, m msg) *sip.Response {
	t.Helper()
	res := e.do(t, m)
	if res.StatusCode != 200 {
		t.Fatalf("setup REGISTER: got %d %s, want 200", res.StatusCode, res.Reason)
	}
	return res
}

// contactsOf returns the Contact values of a response keyed by URI.
func contactsOf(res *sip.Response) map[string]sip.HeaderParams {
	out := map[string]sip.HeaderParams{}
	for _, h := range res.GetHeaders("Contact") {
		c := h.(*sip.ContactHeader)
		out[c.Address.String()] = c.Params
	}
	return out
}

func header(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// lookup returns the bindings of sip:alice@dsn.test (or fails).
func (e *testEnv) lookup(t testing.TB, aor string) []Binding {
	t.Helper()
	bs, err := e.reg.Lookup(context.Background(), aor)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", aor, err)
	}
	return bs
}
