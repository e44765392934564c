package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
)

const testDomain = "dsn.test"

// ring is a fake DHT: which node is home for which AOR, shared by the
// test nodes. Each node gets a Locator view of it (ring.locator(addr)).
type ring struct {
	mu    sync.Mutex
	homes map[string]string   // canonical AOR -> home node SIP address
	def   string              // home of every other AOR
	alts  map[string][]string // home node SIP address -> its alternates
	err   error
}

func newRing() *ring { return &ring{homes: map[string]string{}, alts: map[string][]string{}} }

// setAlternates makes addrs the alternates (replica holders, in order) of
// the home node at home.
func (r *ring) setAlternates(home string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alts[home] = addrs
}

func (r *ring) setHome(aor, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.homes[aor] = addr
}

func (r *ring) setDefault(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def = addr
}

type ringLocator struct {
	r    *ring
	self string
}

func (r *ring) locator(self string) *ringLocator { return &ringLocator{r: r, self: self} }

func (l *ringLocator) Home(_ context.Context, aor string) (Home, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.r.err != nil {
		return Home{}, l.r.err
	}
	addr, ok := l.r.homes[aor]
	if !ok {
		addr = l.r.def
	}
	if addr == "" {
		return Home{}, fmt.Errorf("fake ring: no home for %s", aor)
	}
	h := Home{Self: addr == l.self, Name: "node-" + addr, Addr: addr}
	for _, a := range l.r.alts[addr] {
		h.Alternates = append(h.Alternates, Alternate{Self: a == l.self, Name: "node-" + a, Addr: a})
	}
	return h, nil
}

// fakeBindings is a location service in memory.
type fakeBindings struct {
	mu   sync.Mutex
	m    map[string][]registrar.Binding
	errs map[string]error
}

func newFakeBindings() *fakeBindings {
	return &fakeBindings{m: map[string][]registrar.Binding{}, errs: map[string]error{}}
}

func (f *fakeBindings) add(aor string, b registrar.Binding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Expires.IsZero() {
		b.Expires = time.Now().Add(time.Hour)
	}
	if b.Q == 0 {
		b.Q = registrar.QNone
	}
	f.m[aor] = append(f.m[aor], b)
}

func (f *fakeBindings) setErr(aor string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[aor] = err
}

func (f *fakeBindings) Lookup(_ context.Context, aor string) ([]registrar.Binding, error) {
	key, err := registrar.CanonicalAOR(aor)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[key]; err != nil {
		return nil, err
	}
	bs, ok := f.m[key]
	if !ok {
		return nil, registrar.ErrNotFound
	}
	if len(bs) == 0 {
		return nil, registrar.ErrNoBindings
	}
	out := make([]registrar.Binding, len(bs))
	for i := range bs {
		out[i] = bs[i].Clone()
	}
	return out, nil
}

// fakeResolver answers ENUM and RFC 3263 from maps.
type fakeResolver struct {
	mu       sync.Mutex
	enum     map[string]string
	targets  map[string][]dnsreport.Target // keyed by the URI Locate is asked
	enumErr  error
	asked    []string
	locateFn func(uri string) ([]dnsreport.Target, error)
}

var _ dnsreport.Resolver = (*fakeResolver)(nil)

func newFakeResolver() *fakeResolver {
	return &fakeResolver{enum: map[string]string{}, targets: map[string][]dnsreport.Target{}}
}

func (f *fakeResolver) ENUM(_ context.Context, number string) (string, error) {
	n, err := dnsreport.NormalizeE164(number)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, "enum "+n)
	if f.enumErr != nil {
		return "", f.enumErr
	}
	if u, ok := f.enum[n]; ok {
		return u, nil
	}
	return "", fmt.Errorf("fake ENUM %s: %w", n, dnsreport.ErrNotFound)
}

func (f *fakeResolver) Locate(_ context.Context, uri string) ([]dnsreport.Target, error) {
	f.mu.Lock()
	f.asked = append(f.asked, "locate "+uri)
	fn := f.locateFn
	ts, ok := f.targets[uri]
	f.mu.Unlock()
	if fn != nil {
		return fn(uri)
	}
	if !ok {
		return nil, fmt.Errorf("fake locate %s: %w", uri, dnsreport.ErrNotFound)
	}
	return append([]dnsreport.Target(nil), ts...), nil
}

func target(transport, addr string) dnsreport.Target {
	return dnsreport.Target{Transport: transport, Addr: netip.MustParseAddrPort(addr)}
}

// fakeClock is a manual clock: AfterFunc fires when Advance passes it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock and runs the timers that came due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}
