package reps

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// Leave deletes the representative's own records and returns only after
// DNS answered; the node then leaves the ring and the slot's next owner
// registers.
func TestLeaveDeletesOwnRecordsAndWaits(t *testing.T) {
	w := build(t, testConfig(), 12)
	reps := w.checkAgreement()
	leaver := reps[0]
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- leaver.rep.Run(ctx) }()

	w.dns.mu.Lock()
	w.dns.gate, w.dns.entered = make(chan struct{}), make(chan struct{}, 1)
	w.dns.mu.Unlock()
	left := make(chan error, 1)
	go func() { left <- leaver.mgr.Leave(ctx) }()
	<-w.dns.entered // the UPDATE is in flight
	select {
	case err := <-left:
		t.Fatalf("Leave returned (%v) before DNS answered", err)
	default:
	}
	w.dns.mu.Lock()
	gate := w.dns.gate
	w.dns.gate = nil
	w.dns.mu.Unlock()
	close(gate)
	if err := <-left; err != nil {
		t.Fatal(err)
	}
	if p := w.published(); slices.ContainsFunc(describe(p), func(s string) bool { return strings.Contains(s, leaver.label+".") }) {
		t.Fatalf("records left after Leave: %v", describe(p))
	}
	if got := leaver.deletions(); !slices.Contains(got, "self/leave") {
		t.Fatalf("deletions %v", got)
	}
	if leaver.mgr.IsRep() || !leaver.mgr.Status().Leaving {
		t.Fatal("still a representative after Leave")
	}
	if err := leaver.mgr.Elect(w.ctx); !errors.Is(err, ErrLeaving) {
		t.Fatalf("Elect after Leave: %v", err)
	}
	cancel()
	<-runDone

	if err := leaver.node.Leave(w.ctx); err != nil {
		t.Fatal(err)
	}
	leaver.dead = true
	w.converge()
	w.elect()
	w.checkDNS(w.checkAgreement())
}

// A node that never published anything leaves at once, sending nothing.
func TestLeaveNonRepSendsNothing(t *testing.T) {
	cfg := testConfig()
	cfg.WithdrawStale = false
	w := build(t, cfg, 5)
	reps := w.checkAgreement()
	for _, m := range w.live() {
		if slices.Contains(reps, m) {
			continue
		}
		ctx, cancel := context.WithTimeout(w.ctx, time.Minute) // nothing steps the Reporter: must not wait
		err := m.mgr.Leave(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, pending := m.rep.Status(selfKey); pending {
			t.Fatalf("%s submitted something on Leave", m.name)
		}
		return
	}
}

// Leave gives up when ctx ends while DNS is unreachable, and says so.
func TestLeaveTimesOut(t *testing.T) {
	w := build(t, testConfig(), 3)
	rep := w.checkAgreement()[0]
	w.dns.down.Store(true)
	ctx, cancel := context.WithCancel(w.ctx)
	go func() {
		for {
			if st, ok := rep.rep.Status(selfKey); ok && st.Op == "delete" && st.Attempts > 0 {
				cancel()
				return
			}
			rep.rep.Step(w.ctx, w.clock.Now())
			w.clock.advance(time.Second)
		}
	}()
	err := rep.mgr.Leave(ctx)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "reps: leave") {
		t.Fatalf("err %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := FastConfig(testZone, testDomain)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "Zone") {
		t.Fatalf("DefaultConfig without zone: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"k", func(c *Config) { c.K = 0 }, "K"},
		{"seed", func(c *Config) { c.SlotSeed = "" }, "SlotSeed"},
		{"domain outside zone", func(c *Config) { c.Domain = "dsn.other.net." }, "not inside zone"},
		{"zone", func(c *Config) { c.Zone = "bad..name" }, "Zone"},
		{"ttl", func(c *Config) { c.Records.TTL = 0 }, "TTL"},
		{"probe", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval"},
		{"retry", func(c *Config) { c.RetryInterval = 2 * c.ProbeInterval }, "RetryInterval"},
		{"suspect", func(c *Config) { c.SuspectAfter = 0 }, "SuspectAfter"},
		{"silence", func(c *Config) { c.MinSilence = -1 }, "MinSilence"},
		{"reconcile", func(c *Config) { c.ReconcileInterval = -1 }, "ReconcileInterval"},
		{"confirm", func(c *Config) { c.ReconcileConfirmations = 0 }, "ReconcileConfirmations"},
		{"protected", func(c *Config) { c.Protected = []string{"a.b"} }, "Protected[0]"},
	} {
		c := ok
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "reps: ") {
			t.Errorf("%s: err %v, want mention of %s", tc.name, err, tc.want)
		}
	}
}

func TestParseSIPAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5060":         "192.0.2.1:5060",
		"[2001:db8::1]:5070":     "[2001:db8::1]:5070",
		"[::ffff:10.0.0.1]:5060": "10.0.0.1:5060",
	} {
		got, err := ParseSIPAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "host:5060", "192.0.2.1", "0.0.0.0:5060", "[::]:5060", "192.0.2.1:0", "192.0.2.1:99999"} {
		if _, err := ParseSIPAddr(in); !errors.Is(err, ErrBadSIPAddr) {
			t.Errorf("%q: err %v", in, err)
		}
	}
}

func TestNewChecksDeps(t *testing.T) {
	w := newWorld(t, testConfig())
	m := w.add("ok")
	cfg := testConfig()
	if _, err := New(cfg, Deps{Ring: m.node}); err == nil {
		t.Fatal("New without Prober and Publisher")
	}
	bad, _ := dht.New(dht.FastConfig(), dht.Peer{ID: dht.NodeID("x"), Name: "x", Addr: "mem:x", Meta: "nowhere"}, dht.Deps{Transport: w.net.Transport("mem:x")})
	_, err := New(cfg, Deps{Ring: bad, Prober: w.net.Transport("mem:x"), Publisher: m.rep})
	if !errors.Is(err, ErrBadSIPAddr) {
		t.Fatalf("New with a bad SIP address: %v", err)
	}
	var _ dnsreport.Clock = (*fakeClock)(nil)
}
