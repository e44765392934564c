package proxy

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestRingViewsDisagree: while the ring churns two nodes can each believe
// the other is bob's home node. The entry node X proxies the INVITE to Y;
// Y, reached by a DSN node as the home node, must serve bob itself (its
// binding look-up reads the DHT, which reaches the true owner) instead of
// handing the request back into the ring, where it returned to X and died
// as 482 Loop Detected. Y record-routes; the dialog runs through Y.
func TestRingViewsDisagree(t *testing.T) {
	binds := newFakeBindings() // both nodes read the same records (the DHT)
	rX, rY := newRing(), newRing()
	mx, my := newEventLog(), newEventLog()
	x := startNode(t, rX, nodeOpts{bindings: binds, metrics: mx})
	y := startNode(t, rY, nodeOpts{bindings: binds, metrics: my})
	rX.setDefault(y.addr) // X: Y is home
	rY.setDefault(x.addr) // Y: X is home
	ua := startUAS(t, "bob", nil)
	binds.add("sip:bob@"+testDomain, ua.binding())
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, x.addr)
	res := c.wait(t)
	if res.StatusCode != 200 {
		t.Fatalf("final %d %s, want 200 (wire at X %v)", res.StatusCode, res.Reason, x.log.call(c.callID))
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) != 1 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(y.addr) {
		t.Fatalf("Record-Route %v, want Y only", rrs)
	}
	inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
	if vias := inv.GetHeaders("Via"); len(vias) != 3 {
		t.Errorf("INVITE at the phone came via %v, want Y, X, caller", vias)
	}
	if n := len(x.log.call(c.callID)); n == 0 {
		t.Fatal("nothing of the call at X")
	}
	c.ackBye(t, y.log, ua.log)
	mx.waitN(t, 1)
	my.waitN(t, 2) // INVITE, BYE
	if ev := mx.invites(); len(ev) != 1 || ev[0].Route != RouteProxy || ev[0].Status != 200 {
		t.Errorf("X's INVITE events %+v, want one proxy, 200", ev)
	}
	if ev := my.invites(); len(ev) != 1 || ev[0].Route != RouteHome || ev[0].Status != 200 {
		t.Errorf("Y's INVITE events %+v, want one home, 200", ev)
	}
	// The INVITE reached X once: it never came back.
	if es := x.log.call(c.callID); countRequests(es, sip.INVITE) != 1 {
		t.Errorf("X received the INVITE %d times, want once", countRequests(es, sip.INVITE))
	}
}

// TestRingViewsDisagreeAlternate: the home node H in X's view is dead, so
// X sends the INVITE to H's alternate Y (dsn-alt); Y's view does not make
// it an alternate (it names X as home). Y, reached by a DSN node as an
// alternate, serves bob instead of handing the request back to X.
func TestRingViewsDisagreeAlternate(t *testing.T) {
	binds := newFakeBindings()
	fast := func(c *Config) { c.NodeFailoverTimeout = 200 * time.Millisecond }
	rX, rY := newRing(), newRing()
	mx, my := newEventLog(), newEventLog()
	h := startNode(t, rX, nodeOpts{bindings: binds, cfg: fast})
	x := startNode(t, rX, nodeOpts{bindings: binds, metrics: mx, cfg: fast})
	y := startNode(t, rY, nodeOpts{bindings: binds, metrics: my, cfg: fast})
	rX.setDefault(h.addr)
	rX.setAlternates(h.addr, y.addr)
	rY.setDefault(x.addr)
	h.kill()
	ua := startUAS(t, "bob", nil)
	binds.add("sip:bob@"+testDomain, ua.binding())
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, x.addr)
	res := c.wait(t)
	if res.StatusCode != 200 {
		t.Fatalf("final %d %s, want 200", res.StatusCode, res.Reason)
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) != 1 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(y.addr) {
		t.Fatalf("Record-Route %v, want Y only", rrs)
	}
	c.ackBye(t, y.log, ua.log)
	mx.waitN(t, 1)
	my.waitN(t, 2)
	if ev := mx.invites(); len(ev) != 1 || ev[0].Route != RouteProxy || ev[0].Failovers != (Failovers{Home: 1}) {
		t.Errorf("X's INVITE events %+v, want one proxy with one home fail-over", ev)
	}
	if ev := my.invites(); len(ev) != 1 || ev[0].Route != RouteAlternate || ev[0].Status != 200 {
		t.Errorf("Y's INVITE events %+v, want one alternate, 200", ev)
	}
	if es := x.log.call(c.callID); countRequests(es, sip.INVITE) != 1 {
		t.Errorf("X received the INVITE %d times, want once", countRequests(es, sip.INVITE))
	}
}

// TestRingViewsDisagreeWithoutMarker: a request for a subscriber that
// does not come from a DSN node (no valid marker: here the nodes hold
// different cluster keys) is still routed by the receiving node's own
// view; two such nodes that name each other as home loop, and the loop
// is detected (RFC 3261 16.3 item 4).
func TestRingViewsDisagreeWithoutMarker(t *testing.T) {
	rX, rY := newRing(), newRing()
	x := startNode(t, rX, nodeOpts{nodeAuth: newTestNodeAuth(t, []byte("x-cluster-key-0123456789abcdef"))})
	y := startNode(t, rY, nodeOpts{nodeAuth: newTestNodeAuth(t, []byte("y-cluster-key-0123456789abcdef"))})
	rX.setDefault(y.addr)
	rY.setDefault(x.addr)
	caller := startUAC(t)
	c := caller.invite(t, "sip:bob@"+testDomain, x.addr)
	if res := c.wait(t); res.StatusCode != 482 {
		t.Fatalf("loop: %d, want 482", res.StatusCode)
	}
}

func countRequests(es []wireEntry, m sip.RequestMethod) int {
	n := 0
	for _, e := range es {
		if e.req && e.method == m {
			n++
		}
	}
	return n
}
