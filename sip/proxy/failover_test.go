package proxy

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
)

// kill closes the endpoint's sockets at once, like a crashed process:
// datagrams to its port are lost, TCP connections to it are refused.
func (ep *endpoint) kill() {
	_ = ep.ua.Close()
	_ = ep.conn.Close()
	_ = ep.tl.Close()
}

// failoverRing is bob's home node H with one alternate S that reads the
// same records (the replica), a node B that proxies to H, bob's phone and
// a caller.
type failoverRing struct {
	r          *ring
	binds      *fakeBindings
	h, s, b    *testNode
	mh, ms, mb *eventLog
	ua         *testUAS
	caller     *testUAC
}

func newFailoverRing(t *testing.T, cfg func(*Config)) *failoverRing {
	t.Helper()
	f := &failoverRing{r: newRing(), binds: newFakeBindings(), mh: newEventLog(), ms: newEventLog(), mb: newEventLog()}
	f.h = startNode(t, f.r, nodeOpts{bindings: f.binds, metrics: f.mh, cfg: cfg})
	f.s = startNode(t, f.r, nodeOpts{bindings: f.binds, metrics: f.ms, cfg: cfg})
	f.b = startNode(t, f.r, nodeOpts{metrics: f.mb, cfg: cfg})
	f.r.setDefault(f.h.addr)
	f.r.setAlternates(f.h.addr, f.s.addr)
	f.ua = startUAS(t, "bob", nil)
	f.binds.add("sip:bob@"+testDomain, f.ua.binding())
	f.caller = startUAC(t)
	return f
}

// call places a call to bob through entry and checks that it is
// answered, and that ACK and BYE reach the phone through the node that
// record-routed (wantRR). It returns the set-up time.
func (f *failoverRing) call(t *testing.T, entry string, wantRR *testNode) time.Duration {
	t.Helper()
	start := time.Now()
	c := f.caller.invite(t, "sip:bob@"+testDomain, entry)
	res := c.wait(t)
	took := time.Since(start)
	if res.StatusCode != 200 {
		t.Fatalf("final %d after %v", res.StatusCode, took)
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) == 0 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(wantRR.addr) {
		t.Fatalf("Record-Route %v, want %s first", rrs, wantRR.addr)
	}
	c.ackBye(t, f.ua.log, wantRR.log)
	return took
}

// ackBye ends an answered call with ACK and BYE (which must get 200) and
// waits until both have arrived at each of the wire logs.
func (c *outCall) ackBye(t *testing.T, at ...*wireLog) {
	t.Helper()
	c.ack(t)
	if bye := c.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE %d", bye.StatusCode)
	}
	for _, w := range at {
		w.waitFor(t, c.callID, 2*time.Second, "ACK and BYE", func(es []wireEntry) bool {
			return has(es, sip.ACK, 0) && has(es, sip.BYE, 0)
		})
	}
}

// invites returns the metrics events of INVITEs.
func (l *eventLog) invites() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.es {
		if e.Method == "INVITE" {
			out = append(out, e)
		}
	}
	return out
}

// TestHomeNodeCrashFailsOverToAlternate: bob's home node H has crashed
// and the ring still names it. B sends the INVITE to H, hears nothing for
// NodeFailoverTimeout (the production default, 1 s), and sends it to H's
// alternate S marked dsn-alt; S serves bob from its replica and stays on
// the dialog.
func TestHomeNodeCrashFailsOverToAlternate(t *testing.T) {
	f := newFailoverRing(t, nil)
	if got := f.b.p.Config().NodeFailoverTimeout; got != time.Second {
		t.Fatalf("NodeFailoverTimeout %v, want the 1 s default", got)
	}
	f.h.kill()
	took := f.call(t, f.b.addr, f.s)
	t.Logf("call answered through the alternate %v after the INVITE (NodeFailoverTimeout 1s)", took)
	if took < time.Second || took > 2*time.Second {
		t.Errorf("set-up took %v, want 1-2 s", took)
	}
	f.mb.waitN(t, 1)
	f.ms.waitN(t, 2) // INVITE, BYE
	if ev := f.mb.invites(); len(ev) != 1 || ev[0].Route != RouteProxy || ev[0].Failovers != (Failovers{Home: 1}) || ev[0].Status != 200 {
		t.Errorf("B's INVITE event %+v, want proxy, 200, one home fail-over", ev)
	}
	if ev := f.ms.invites(); len(ev) != 1 || ev[0].Route != RouteAlternate || ev[0].Status != 200 {
		t.Errorf("S's INVITE event %+v, want alternate, 200", ev)
	}
	inv := firstRequest(t, f.ua.log, f.caller.log.all()[0].callID, sip.INVITE)
	if vias := inv.GetHeaders("Via"); len(vias) != 3 {
		t.Errorf("INVITE at the phone came via %v, want S, B, caller", vias)
	}
}

// TestAlternateIsTheEntryNode: the node the caller reached is itself the
// alternate of the crashed home node: it sends the request to itself as
// the alternate (a spiral, not a loop) and serves it.
func TestAlternateIsTheEntryNode(t *testing.T) {
	f := newFailoverRing(t, func(c *Config) { c.NodeFailoverTimeout = 200 * time.Millisecond })
	f.h.kill()
	took := f.call(t, f.s.addr, f.s)
	t.Logf("answered after %v (NodeFailoverTimeout 200ms)", took)
	f.ms.waitN(t, 3) // INVITE as proxy, INVITE as alternate, BYE
	var kinds []string
	for _, e := range f.ms.invites() {
		kinds = append(kinds, string(e.Route))
		if e.Route == RouteProxy && e.Failovers.Home != 1 {
			t.Errorf("proxy event %+v, want one home fail-over", e)
		}
	}
	// Both handlers run on S; which records its event first is a race (the
	// alternate's 200 reaches the proxy leg over loopback), so the events
	// are compared as a set.
	sort.Strings(kinds)
	if got := strings.Join(kinds, ","); got != "alternate,proxy" {
		t.Errorf("S's INVITE events %s, want alternate and proxy", got)
	}
}

// TestHomeNodeRefusesTCP: with NodeTransport tcp, a crashed home node
// refuses the connection and the alternate is tried at once.
func TestHomeNodeRefusesTCP(t *testing.T) {
	f := newFailoverRing(t, func(c *Config) { c.NodeTransport = "tcp" })
	f.h.kill()
	took := f.call(t, f.b.addr, f.s)
	t.Logf("answered after %v over TCP", took)
	if took > 700*time.Millisecond {
		t.Errorf("set-up took %v: the refused connection should fail over at once", took)
	}
}

// TestHomeNode503FailsOver: a home node that answers 503 (overloaded, or
// its DHT broken) is given up at once for its alternate.
func TestHomeNode503FailsOver(t *testing.T) {
	f := newFailoverRing(t, nil)
	busy := startUAS(t, "busy-node", func(u *testUAS, req *sip.Request, tx sip.ServerTransaction) {
		_ = u.respond(req, tx, 503, "Service Unavailable")
	})
	f.r.setDefault(busy.addr)
	f.r.setAlternates(busy.addr, f.s.addr)
	took := f.call(t, f.b.addr, f.s)
	t.Logf("answered after %v", took)
	if took > 700*time.Millisecond {
		t.Errorf("set-up took %v: a 503 should fail over at once", took)
	}
	busy.log.waitFor(t, "", time.Second, "the INVITE at the 503 node", func(es []wireEntry) bool { return has(es, sip.INVITE, 0) })
}

// TestNoAlternateLeft: when the home node and every alternate are gone,
// the caller gets a final response (408 after the last node's transaction
// timeout), not silence.
func TestNoAlternateLeft(t *testing.T) {
	f := newFailoverRing(t, func(c *Config) { c.NodeFailoverTimeout = 100 * time.Millisecond })
	f.h.kill()
	f.s.kill()
	c := f.caller.invite(t, "sip:bob@"+testDomain, f.b.addr)
	if res := c.wait(t); res.StatusCode != 408 {
		t.Fatalf("final %d, want 408", res.StatusCode)
	}
	f.mb.waitN(t, 1)
	if ev := f.mb.invites(); len(ev) != 1 || ev[0].Failovers.Home != 1 {
		t.Errorf("B's event %+v, want one home fail-over", ev)
	}
}

// edgeCase is bob's home node H with bob registered through edge node A
// (Path), the phone bound at its real address or behind a NAT.
func edgeCase(t *testing.T, nat bool) (h, a *testNode, mh *eventLog, ua *testUAS, caller *testUAC) {
	t.Helper()
	r := newRing()
	binds := newFakeBindings()
	mh = newEventLog()
	fast := func(c *Config) { c.NodeFailoverTimeout = 300 * time.Millisecond }
	h = startNode(t, r, nodeOpts{bindings: binds, metrics: mh, cfg: fast})
	a = startNode(t, r, nodeOpts{cfg: fast})
	r.setDefault(h.addr)
	ua = startUAS(t, "bob", nil)
	bnd := ua.binding()
	bnd.Path = []string{"<sip:" + a.addr + ";lr>"}
	bnd.Received = registrar.Source{Transport: "UDP", Addr: netip.MustParseAddrPort(ua.addr)}
	if nat {
		// A private Contact (never sent to): the phone is reached only
		// at the address its REGISTER came from.
		bnd.Contact = "sip:bob@192.168.1.20:5060"
	}
	binds.add("sip:bob@"+testDomain, bnd)
	return h, a, mh, ua, startUAC(t)
}

// TestPathEdgeDeadCallsPhoneDirectly: bob registered through edge A, which
// has crashed. H gives A up after NodeFailoverTimeout and sends the INVITE
// to the phone itself; the dialog runs through H alone.
func TestPathEdgeDeadCallsPhoneDirectly(t *testing.T) {
	for _, nat := range []bool{false, true} {
		name := "contact"
		if nat {
			name = "nat-flow"
		}
		t.Run(name, func(t *testing.T) {
			h, a, mh, ua, caller := edgeCase(t, nat)
			a.kill()
			start := time.Now()
			c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
			res := c.wait(t)
			took := time.Since(start)
			if res.StatusCode != 200 {
				t.Fatalf("final %d", res.StatusCode)
			}
			t.Logf("answered directly after %v (NodeFailoverTimeout 300ms)", took)
			rrs := res.GetHeaders("Record-Route")
			if len(rrs) != 1 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(h.addr) {
				t.Fatalf("Record-Route %v, want H only", rrs)
			}
			if got := strings.Contains(rrs[0].Value(), flowParam+"=udp:"+ua.addr); got != nat {
				t.Errorf("Record-Route %s: flow parameter %v, want %v", rrs[0].Value(), got, nat)
			}
			inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
			if vias := inv.GetHeaders("Via"); len(vias) != 2 || inv.Route() != nil {
				t.Errorf("INVITE at the phone: Vias %v Routes %v, want H and the caller, no Route", vias, inv.GetHeaders("Route"))
			}
			c.ackBye(t, ua.log)
			mh.waitN(t, 2)
			if ev := mh.invites(); len(ev) != 1 || ev[0].Failovers != (Failovers{Path: 1}) {
				t.Errorf("H's INVITE event %+v, want one path fail-over", ev)
			}
		})
	}
}

// TestPathEdgeAliveIsUsed: with the edge up the INVITE goes through it,
// with no fail-over; for a phone behind NAT the home node names the flow
// in the edge's Route entry, and the edge delivers through it and keeps
// it in its Record-Route for the rest of the dialog.
func TestPathEdgeAliveIsUsed(t *testing.T) {
	h, a, mh, ua, caller := edgeCase(t, true)
	c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
	res := c.wait(t)
	if res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) != 2 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(a.addr) ||
		!strings.Contains(rrs[0].Value(), flowParam+"=udp:"+ua.addr) {
		t.Fatalf("Record-Route %v, want A with the flow, then H", rrs)
	}
	inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
	if vias := inv.GetHeaders("Via"); len(vias) != 3 || vias[0].(*sip.ViaHeader).Port != portOf(a.addr) {
		t.Fatalf("INVITE at the phone came via %v, want A, H, caller", vias)
	}
	c.ackBye(t, a.log, ua.log)
	mh.waitN(t, 2)
	if ev := mh.invites(); len(ev) != 1 || ev[0].Failovers.Total() != 0 {
		t.Errorf("H's event %+v, want no fail-over", ev)
	}
}
