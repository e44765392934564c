package reps

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
)

const (
	testZone   = "example.com."
	testDomain = "dsn.example.com."
)

var testKey = dnsreport.Key{
	Name: "reps-test.", Algorithm: dns.HmacSHA256,
	Secret: base64.StdEncoding.EncodeToString([]byte("reps-test-secret-0123456789abcdef")),
}

// fakeClock is the injected clock of the synchronous tests; its After
// never fires (only Run uses it).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

// memDNS is the embedded DNS server's Handler reached in memory: every
// message is TSIG-signed, packed, verified and handled as over the wire.
// It is both the Updater of the nodes' Reporters and the Exchanger of
// their DNSReaders. down simulates an outage; gate (when set) holds every
// UPDATE until the test receives from entered and sends on gate.
type memDNS struct {
	h       *dnsserver.Handler
	key     dnsreport.Key
	down    atomic.Bool
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
}

var (
	_ dnsreport.Exchanger = (*memDNS)(nil)
	_ dnsreport.Updater   = (*memDNS)(nil)
)

func newMemDNS(t testing.TB) *memDNS {
	t.Helper()
	cfg := dnsserver.DevConfig(testZone, "", dnsserver.Key{Name: testKey.Name, Algorithm: testKey.Algorithm, Secret: testKey.Secret})
	h, err := dnsserver.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &memDNS{h: h, key: testKey}
}

func (d *memDNS) Exchange(_ context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	if d.down.Load() {
		return nil, &dnsreport.UpdateError{Server: server, Rcode: dnsreport.NoReply, Err: errors.New("memDNS is down")}
	}
	q := m.Copy()
	q.SetTsig(d.key.Name, d.key.Algorithm, 300, time.Now().Unix())
	wire, mac, err := dns.TsigGenerate(q, d.key.Secret, "", false)
	if err != nil {
		return nil, err
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil {
		return nil, err
	}
	status := dns.TsigVerifyWithProvider(wire, d.h.TsigProvider(), "", false)
	replies := d.h.Handle(dnsserver.Request{Msg: req, TSIGStatus: status, TCP: true})
	if len(replies) != 1 {
		return nil, fmt.Errorf("memDNS: %d replies", len(replies))
	}
	out, _, err := dns.TsigGenerateWithProvider(replies[0], d.h.TsigProvider(), mac, false)
	if err != nil {
		return nil, err
	}
	if err := dns.TsigVerify(out, d.key.Secret, mac, false); err != nil {
		return nil, fmt.Errorf("memDNS: reply signature: %w", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return r, &dnsreport.UpdateError{Server: server, Rcode: r.Rcode, Signed: true}
	}
	return r, nil
}

func (d *memDNS) Update(ctx context.Context, ch dnsreport.Change) error {
	d.mu.Lock()
	gate, entered := d.gate, d.entered
	d.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	r, err := d.Exchange(ctx, ch.Msg(), "mem")
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return &dnsreport.UpdateError{Server: "mem", Rcode: r.Rcode, Signed: true}
	}
	return nil
}

// member is one node of the test world.
type member struct {
	name  string
	label string
	sip   netip.AddrPort
	node  *dht.Node
	mgr   *Manager
	rep   *dnsreport.Reporter
	dead  bool
	stop  func() // stops the member's Run loops (Run tests)

	mu       sync.Mutex
	results  []dnsreport.Result
	onResult func(dnsreport.Result) // optional signal for Run tests
}

func (m *member) recordResult(r dnsreport.Result) {
	m.mu.Lock()
	m.results = append(m.results, r)
	f := m.onResult
	m.mu.Unlock()
	if f != nil {
		f(r)
	}
}

// deletions returns the applied deletions this node sent, as "key/role".
func (m *member) deletions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.results {
		if r.Op == "delete" && r.Err == nil {
			out = append(out, r.Key+"/"+r.Role)
		}
	}
	return out
}

func (m *member) clearResults() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = nil
}

// world is a ring of nodes on a dht.MemNetwork, each with its Manager and
// Reporter, all updating one memDNS, driven round by round.
type world struct {
	t      testing.TB
	ctx    context.Context
	clock  *fakeClock
	net    *dht.MemNetwork
	dns    *memDNS
	dcfg   dht.Config
	cfg    Config
	rng    *mrand.Rand
	byName map[string]*member
	seq    int
	// updater, when set, replaces memDNS as the Reporters' Updater and the
	// Reporters are driven by their own Run (real DNS server tests).
	updater   dnsreport.Updater
	reader    func() Reader
	check     Reader // what published() reads (default: memDNS by queries)
	selfRun   bool
	wrapProbe func(from string, p Prober) Prober
	// realTime gives the Managers and Reporters the system clock (tests of
	// the Run drivers); hooks gives each Manager its metrics hooks.
	realTime bool
	hooks    func(name string) Hooks
	onResult func(name string, r dnsreport.Result)

	mu sync.Mutex // guards dead flags for the Run tests' goroutines
}

func newWorld(t testing.TB, cfg Config) *world {
	return &world{
		t: t, ctx: context.Background(),
		clock: &fakeClock{now: time.Unix(1_700_000_000, 0)},
		net:   dht.NewMemNetwork(), dns: newMemDNS(t),
		dcfg: dht.FastConfig(), cfg: cfg, rng: mrand.New(mrand.NewSource(7)),
		byName: map[string]*member{},
	}
}

func testConfig() Config {
	c := FastConfig(testZone, testDomain)
	c.ReconcileConfirmations = 2
	return c
}

// add creates a node and joins it to the ring (or creates the ring).
func (w *world) add(name string) *member {
	w.t.Helper()
	w.seq++
	sip := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(w.seq / 250), byte(w.seq%250 + 1)}), 5060)
	addr := "mem:" + name
	self := dht.Peer{ID: dht.NodeID(name), Name: name, Addr: addr, Meta: sip.String()}
	mem := &member{name: name, sip: sip}
	if w.onResult != nil {
		mem.onResult = func(r dnsreport.Result) { w.onResult(name, r) }
	}
	mem.label, _ = dnsreport.NodeLabel(name)
	var mgrPtr atomic.Pointer[Manager]
	node, err := dht.New(w.dcfg, self, dht.Deps{
		Transport: w.net.Transport(addr), Now: w.clock.Now,
		Rand: mrand.New(mrand.NewSource(w.rng.Int63())),
		Observer: func(ev dht.Event) {
			if m := mgrPtr.Load(); m != nil {
				m.OnRingEvent(ev)
			}
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	mem.node = node
	var up dnsreport.Updater = w.dns
	var clock, mclock dnsreport.Clock = w.clock, w.clock
	if w.updater != nil {
		up, clock = w.updater, dnsreport.SystemClock{}
	}
	if w.realTime {
		clock, mclock = dnsreport.SystemClock{}, dnsreport.SystemClock{}
	}
	var hooks Hooks
	if w.hooks != nil {
		hooks = w.hooks(name)
	}
	rcfg := dnsreport.FastConfig().Reporter
	mem.rep, err = dnsreport.NewReporter(rcfg, up, clock, rand.New(rand.NewPCG(1, uint64(w.seq))), nil, mem.recordResult)
	if err != nil {
		w.t.Fatal(err)
	}
	var reader Reader = &DNSReader{Exchanger: w.dns, Servers: []string{"mem"}, Zone: testZone, Domain: testDomain}
	if w.reader != nil {
		reader = w.reader()
	}
	var prober Prober = w.net.Transport(addr)
	if w.wrapProbe != nil {
		prober = w.wrapProbe(name, prober)
	}
	mem.mgr, err = New(w.cfg, Deps{
		Ring: node, Prober: prober, Publisher: mem.rep, Reader: reader,
		Members: w.liveMembers, Clock: mclock, Hooks: hooks,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	mgrPtr.Store(mem.mgr)
	live := w.live()
	w.net.Serve(addr, node)
	w.mu.Lock()
	w.byName[name] = mem
	w.mu.Unlock()
	if len(live) == 0 {
		node.Create()
	} else if err := node.Join(w.ctx, live[w.rng.Intn(len(live))].node.Self()); err != nil {
		w.t.Fatalf("join %s: %v", name, err)
	}
	return mem
}

func (w *world) addN(n int) {
	for range n {
		w.add(fmt.Sprintf("sn%03d", w.seq+1))
	}
}

// kill crashes a node: it neither answers nor runs any more.
func (w *world) kill(m *member) {
	w.net.Kill(m.node.Self().Addr)
	w.mu.Lock()
	m.dead = true
	stop := m.stop
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// live returns the live members sorted by ring ID.
func (w *world) live() []*member {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*member
	for _, m := range w.byName {
		if !m.dead {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Self().ID < out[j].node.Self().ID })
	return out
}

// liveMembers is what the gossip layer would report.
func (w *world) liveMembers() []dht.Peer {
	var out []dht.Peer
	for _, m := range w.live() {
		out = append(out, m.node.Self())
	}
	return out
}

// neighbours returns, by truth, the predecessor, successor and second
// successor of m among the live nodes.
func (w *world) neighbours(m *member) (pred, succ, backup *member) {
	l := w.live()
	i := slices.Index(l, m)
	n := len(l)
	return l[(i-1+n)%n], l[(i+1)%n], l[(i+2)%n]
}

// ringOK reports whether every live node's predecessor and successor list
// match the truth.
func (w *world) ringOK() bool {
	l := w.live()
	n := len(l)
	for i, m := range l {
		st := m.node.State()
		want := min(w.dcfg.SuccessorListLen, n-1)
		if len(st.Successors) != want {
			return false
		}
		for j := range want {
			if st.Successors[j].ID != l[(i+1+j)%n].node.Self().ID {
				return false
			}
		}
		if n > 1 && st.Predecessor.ID != l[(i-1+n)%n].node.Self().ID {
			return false
		}
	}
	return true
}

// converge runs stabilize rounds (with the gossip membership offered, as
// dht.Driver does) until the ring is right, then fixes every finger.
func (w *world) converge() {
	w.t.Helper()
	for round := 0; round < 200; round++ {
		if w.ringOK() {
			for _, m := range w.live() {
				_ = m.node.FixFingers(w.ctx)
			}
			return
		}
		for _, m := range w.live() {
			if round%10 == 9 {
				m.node.Consider(w.ctx, w.liveMembers())
			}
			_ = m.node.CheckPredecessor(w.ctx)
			_ = m.node.Stabilize(w.ctx)
		}
	}
	w.t.Fatal("ring did not converge in 200 rounds")
}

// step lets every live node's Reporter apply what is due.
func (w *world) step() {
	if w.selfRun {
		return
	}
	for _, m := range w.live() {
		m.rep.Step(w.ctx, w.clock.Now())
	}
}

// elect runs one election on every live node and applies the DNS changes.
func (w *world) elect() {
	w.t.Helper()
	for _, m := range w.live() {
		if err := m.mgr.Elect(w.ctx); err != nil {
			w.t.Fatalf("%s: elect: %v", m.name, err)
		}
	}
	w.step()
}

// round is one tick of simulated time (RetryInterval): ring probing and
// stabilization, the representatives' watch, and DNS.
func (w *world) round() {
	w.clock.advance(w.cfg.RetryInterval)
	for _, m := range w.live() {
		m.node.ProbeNeighbors(w.ctx, nil)
		_ = m.node.CheckPredecessor(w.ctx)
		_ = m.node.Stabilize(w.ctx)
	}
	for _, m := range w.live() {
		m.mgr.Probe(w.ctx)
	}
	w.step()
}

// truthReps computes the representative set by brute force.
func (w *world) truthReps() []*member {
	l := w.live()
	taken := map[*member]bool{}
	var out []*member
	for _, pt := range SlotPoints(w.cfg.K, w.cfg.SlotSeed) {
		i := sort.Search(len(l), func(i int) bool { return l[i].node.Self().ID >= pt })
		for j := range len(l) {
			c := l[(i+j)%len(l)]
			if !taken[c] {
				taken[c] = true
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func names(ms []*member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.name)
	}
	return strings.Join(s, ",")
}

func peerNames(ps []dht.Peer) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return strings.Join(s, ",")
}

// checkAgreement fails unless every live node's set equals the truth.
func (w *world) checkAgreement() []*member {
	w.t.Helper()
	want := w.truthReps()
	for _, m := range w.live() {
		if got := peerNames(m.mgr.Reps()); got != names(want) {
			w.t.Fatalf("%s sees reps %s, want %s", m.name, got, names(want))
		}
		if m.mgr.IsRep() != slices.Contains(want, m) {
			w.t.Fatalf("%s: IsRep %v, want %v", m.name, m.mgr.IsRep(), !m.mgr.IsRep())
		}
	}
	return want
}

// published reads the representatives' records from DNS.
func (w *world) published() dnsreport.Published {
	w.t.Helper()
	var r Reader = &DNSReader{Exchanger: w.dns, Servers: []string{"mem"}, Zone: testZone, Domain: testDomain}
	if w.check != nil {
		r = w.check
	}
	p, err := r.ReadPublished(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// describe renders published records as sorted lines, for comparison.
func describe(p dnsreport.Published) []string {
	var out []string
	for _, s := range p.UDP {
		out = append(out, fmt.Sprintf("udp %s %d %d %d", s.Target, s.Port, s.Priority, s.Weight))
	}
	for _, s := range p.TCP {
		out = append(out, fmt.Sprintf("tcp %s %d %d %d", s.Target, s.Port, s.Priority, s.Weight))
	}
	for _, a := range p.DomainAddrs {
		out = append(out, "domain "+a.String())
	}
	for t, as := range p.Targets {
		for _, a := range as {
			out = append(out, "target "+t+" "+a.String())
		}
	}
	sort.Strings(out)
	return out
}

// expectDNS builds what DNS must hold for exactly these representatives.
func (w *world) expectDNS(reps []*member) []string {
	rc := w.cfg.Records
	var out []string
	for _, m := range reps {
		target := m.label + "." + testZone
		for _, proto := range []string{"udp", "tcp"} {
			out = append(out, fmt.Sprintf("%s %s %d %d %d", proto, target, m.sip.Port(), rc.Priority, rc.Weight))
		}
		out = append(out, "domain "+m.sip.Addr().String(), "target "+target+" "+m.sip.Addr().String())
	}
	sort.Strings(out)
	return out
}

// checkDNS fails unless DNS holds exactly the records of reps.
func (w *world) checkDNS(reps []*member) {
	w.t.Helper()
	got, want := describe(w.published()), w.expectDNS(reps)
	if !slices.Equal(got, want) {
		w.t.Fatalf("DNS holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// build makes a converged ring of n nodes with every node elected once.
func build(t testing.TB, cfg Config, n int) *world {
	w := newWorld(t, cfg)
	w.addN(n)
	w.converge()
	w.elect()
	return w
}
