package proxy

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"

	"github.com/dsn-ims/dsn/sip/registrar"
	"strings"

	"github.com/dsn-ims/dsn/dnsreport"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// twoNodes starts a non-home node B and the home node H of bob, with one
// UAS registered for bob at H.
func twoNodes(t *testing.T, mode RouteMode, answer uasBehavior) (b, h *testNode, ua *testUAS, r *ring) {
	t.Helper()
	return twoNodesTB(t, mode, answer)
}

func twoNodesTB(t testing.TB, mode RouteMode, answer uasBehavior) (b, h *testNode, ua *testUAS, r *ring) {
	t.Helper()
	r = newRing()
	binds := newFakeBindings()
	h = startNode(t, r, nodeOpts{bindings: binds})
	b = startNode(t, r, nodeOpts{mode: mode, bindings: newFakeBindings()})
	r.setDefault(h.addr)
	ua = startUAS(t, "bob", answer)
	binds.add("sip:bob@"+testDomain, ua.binding())
	return b, h, ua, r
}

func TestProxyModeCall(t *testing.T) {
	b, h, ua, _ := twoNodes(t, ModeProxy, nil)
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, b.addr)
	res := c.wait(t)
	if res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	es := caller.log.waitFor(t, c.callID, 2*time.Second, "180 and 200", func(es []wireEntry) bool {
		return has(es, sip.INVITE, 180) && has(es, sip.INVITE, 200)
	})
	if i180, i200 := index(es, sip.INVITE, 180), index(es, sip.INVITE, 200); i180 > i200 {
		t.Fatalf("180 after 200: %v", es)
	}
	rrs := res.GetHeaders("Record-Route")
	if len(rrs) != 1 {
		t.Fatalf("Record-Route %v, want exactly the home node's", rrs)
	}
	rr := rrs[0].(*sip.RecordRouteHeader).Address
	if rr.Port != portOf(h.addr) || !rr.UriParams.Has("lr") {
		t.Fatalf("Record-Route %s, want H %s;lr", rr.String(), h.addr)
	}
	c.ack(t)
	if bye := c.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE: %d", bye.StatusCode)
	}
	got := ua.log.waitFor(t, c.callID, 2*time.Second, "INVITE ACK BYE at the UA", func(es []wireEntry) bool {
		return has(es, sip.BYE, 0)
	})
	if i, j := index(got, sip.ACK, 0), index(got, sip.BYE, 0); i < 0 || i > j {
		t.Fatalf("UA saw %v", got)
	}
	for _, e := range b.log.call(c.callID) {
		if e.req && (e.method == sip.ACK || e.method == sip.BYE) {
			t.Fatalf("non-home node B saw %s: the dialog must run between caller and H", e.method)
		}
	}
	inv := got[0].msg.(*sip.Request)
	if vias := inv.GetHeaders("Via"); len(vias) != 3 {
		t.Fatalf("INVITE at UA has Vias %v, want H, B, caller", vias)
	}
}

func TestRedirectModeCall(t *testing.T) {
	b, h, ua, _ := twoNodes(t, ModeRedirect, nil)
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, b.addr)
	res := c.wait(t)
	if res.StatusCode != 302 {
		t.Fatalf("final %d, want 302", res.StatusCode)
	}
	ct := res.Contact()
	if ct == nil {
		t.Fatal("302 without Contact")
	}
	want := "sip:bob@" + h.addr
	if got := ct.Address.String(); got != want {
		t.Fatalf("Contact %s, want %s", got, want)
	}
	if len(ua.log.call(c.callID)) != 0 {
		t.Fatal("redirecting node forwarded the INVITE")
	}

	// The caller follows the Contact: the INVITE goes to H itself.
	c2 := caller.invite(t, ct.Address.String(), h.addr)
	if res := c2.wait(t); res.StatusCode != 200 {
		t.Fatalf("follow-up INVITE: %d", res.StatusCode)
	}
	if rrs := c2.final.GetHeaders("Record-Route"); len(rrs) != 1 {
		t.Fatalf("Record-Route %v, want H only", rrs)
	}
	c2.ack(t)
	if bye := c2.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE %d", bye.StatusCode)
	}
	ua.log.waitFor(t, c2.callID, 2*time.Second, "ACK and BYE at the UA", func(es []wireEntry) bool {
		return has(es, sip.ACK, 0) && has(es, sip.BYE, 0)
	})
	for _, e := range b.log.call(c2.callID) {
		t.Fatalf("node B saw %v of the redirected call", e)
	}
}

func TestRedirectOnlyInvite(t *testing.T) {
	b, _, ua, _ := twoNodes(t, ModeRedirect, nil)
	caller := startUAC(t)
	c := caller.send(t, caller.request(sip.MESSAGE, "sip:bob@"+testDomain, b.addr))
	if res := c.wait(t); res.StatusCode != 200 {
		t.Fatalf("MESSAGE in redirect mode: %d, want it proxied (200)", res.StatusCode)
	}
	ua.log.waitFor(t, c.callID, 2*time.Second, "MESSAGE at the UA", func(es []wireEntry) bool { return has(es, sip.MESSAGE, 0) })
}

func TestForkFirst200WinsOtherCancelled(t *testing.T) {
	r := newRing()
	binds := newFakeBindings()
	h := startNode(t, r, nodeOpts{bindings: binds})
	r.setDefault(h.addr)
	release1 := make(chan struct{})
	ua1 := startUAS(t, "bob1", ringUntil(release1))
	ua2 := startUAS(t, "bob2", ringUntil(nil))
	binds.add("sip:bob@"+testDomain, ua1.binding())
	binds.add("sip:bob@"+testDomain, ua2.binding())
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
	caller.log.waitFor(t, c.callID, 2*time.Second, "a 180 from each fork", func(es []wireEntry) bool {
		n := 0
		for _, e := range es {
			if e.code == 180 {
				n++
			}
		}
		return n >= 2
	})
	close(release1)
	res := c.wait(t)
	if res.StatusCode != 200 || res.To().Params.GetOr("tag", "") != "bob1-tag" {
		t.Fatalf("final %d from %s, want 200 from bob1", res.StatusCode, res.To().Value())
	}
	ua2.log.waitFor(t, c.callID, 2*time.Second, "CANCEL at the ringing fork", func(es []wireEntry) bool {
		return has(es, sip.CANCEL, 0)
	})
	c.ack(t)
	if bye := c.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE %d", bye.StatusCode)
	}
	for _, e := range caller.log.call(c.callID) {
		if e.code == 487 {
			t.Fatalf("the cancelled fork's 487 reached the caller: %v", caller.log.call(c.callID))
		}
	}
	if has(ua2.log.call(c.callID), sip.BYE, 0) {
		t.Fatal("BYE went to the cancelled fork")
	}
}

func TestForkAnswerBeforeOtherRings(t *testing.T) {
	r := newRing()
	binds := newFakeBindings()
	h := startNode(t, r, nodeOpts{bindings: binds})
	r.setDefault(h.addr)
	ua1 := startUAS(t, "bob1", answerWith(200))
	ua2 := startUAS(t, "bob2", ringUntil(nil))
	binds.add("sip:bob@"+testDomain, ua1.binding())
	binds.add("sip:bob@"+testDomain, ua2.binding())
	caller := startUAC(t)
	c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
	if res := c.wait(t); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	ua2.log.waitFor(t, c.callID, 2*time.Second, "CANCEL at the second fork", func(es []wireEntry) bool {
		return has(es, sip.CANCEL, 0)
	})
	c.ack(t)
	c.bye(t)
}

func TestCallerCancelReachesUA(t *testing.T) {
	b, h, ua, _ := twoNodes(t, ModeProxy, ringUntil(nil))
	_ = h
	caller := startUAC(t)
	c := caller.invite(t, "sip:bob@"+testDomain, b.addr)
	caller.log.waitFor(t, c.callID, 2*time.Second, "180", func(es []wireEntry) bool { return has(es, sip.INVITE, 180) })
	sent := time.Now()
	c.cancel(t)
	es := ua.log.waitFor(t, c.callID, 2*time.Second, "CANCEL at the UA", func(es []wireEntry) bool { return has(es, sip.CANCEL, 0) })
	lat := es[index(es, sip.CANCEL, 0)].at.Sub(sent)
	t.Logf("CANCEL caller -> B -> H -> UA took %v", lat)
	if lat > 500*time.Millisecond {
		t.Errorf("CANCEL took %v to reach the UA (sanity bound 500ms; target < 100ms)", lat)
	}
	if res := c.wait(t); res.StatusCode != 487 {
		t.Fatalf("final %d, want 487", res.StatusCode)
	}
}

func TestFinalResponsesPassBack(t *testing.T) {
	for _, code := range []int{486, 603, 404} {
		t.Run(reasonFor(code), func(t *testing.T) {
			b, _, _, _ := twoNodes(t, ModeProxy, answerWith(code))
			caller := startUAC(t)
			c := caller.invite(t, "sip:bob@"+testDomain, b.addr)
			if res := c.wait(t); res.StatusCode != code {
				t.Fatalf("final %d, want %d", res.StatusCode, code)
			}
		})
	}
}

func TestUnknownUserAndNoBindings(t *testing.T) {
	r := newRing()
	binds := newFakeBindings()
	h := startNode(t, r, nodeOpts{bindings: binds})
	b := startNode(t, r, nodeOpts{})
	r.setDefault(h.addr)
	binds.mu.Lock()
	binds.m["sip:carol@"+testDomain] = nil // registered once, nothing live
	binds.mu.Unlock()
	caller := startUAC(t)
	for _, tc := range []struct {
		user string
		want int
	}{{"nobody", 404}, {"carol", 480}} {
		for _, via := range []*testNode{h, b} {
			c := caller.invite(t, "sip:"+tc.user+"@"+testDomain, via.addr)
			if res := c.wait(t); res.StatusCode != tc.want {
				t.Errorf("%s via %s: %d, want %d", tc.user, via.addr, res.StatusCode, tc.want)
			}
		}
	}
}

func TestPathThroughEdgeProxy(t *testing.T) {
	h, e, _, ua, caller := edgeCase(t, false)

	c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
	if res := c.wait(t); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
	vias := inv.GetHeaders("Via")
	if len(vias) != 3 || vias[0].(*sip.ViaHeader).Port != portOf(e.addr) || vias[1].(*sip.ViaHeader).Port != portOf(h.addr) {
		t.Fatalf("INVITE at UA came via %v, want edge, home, caller", vias)
	}
	if inv.Route() != nil {
		t.Fatalf("Route left in the INVITE at the UA: %v", inv.GetHeaders("Route"))
	}
	rrs := c.final.GetHeaders("Record-Route")
	if len(rrs) != 2 {
		t.Fatalf("Record-Route %v, want edge and home", rrs)
	}
	c.ack(t)
	if bye := c.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE %d", bye.StatusCode)
	}
	es := e.log.waitFor(t, c.callID, 2*time.Second, "ACK and BYE through the edge", func(es []wireEntry) bool {
		return has(es, sip.ACK, 0) && has(es, sip.BYE, 0)
	})
	if index(es, sip.ACK, 0) > index(es, sip.BYE, 0) {
		t.Fatalf("edge saw %v", es)
	}
}

func TestENUMToDSNUser(t *testing.T) {
	res := newFakeResolver()
	res.enum["+15550001"] = "sip:bob@" + testDomain
	r := newRing()
	binds := newFakeBindings()
	h := startNode(t, r, nodeOpts{bindings: binds, resolver: res})
	b := startNode(t, r, nodeOpts{resolver: res})
	r.setDefault(h.addr)
	ua := startUAS(t, "bob", nil)
	binds.add("sip:bob@"+testDomain, ua.binding())
	caller := startUAC(t)
	for _, ruri := range []string{"tel:+1-555-0001", "sip:+15550001@" + testDomain + ";user=phone"} {
		c := caller.invite(t, ruri, b.addr)
		if got := c.wait(t); got.StatusCode != 200 {
			t.Fatalf("%s: final %d", ruri, got.StatusCode)
		}
		inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
		if inv.Recipient.String() != ua.contact() {
			t.Fatalf("R-URI at UA %s", inv.Recipient.String())
		}
		c.ack(t)
		c.bye(t)
	}
}

func TestENUMToExternalWithFailover(t *testing.T) {
	res := newFakeResolver()
	dead := newEndpoint(t, "dead") // bound, never read: INVITEs time out
	_ = dead
	busy := startUAS(t, "ims-busy", answerWith(503))
	ims := startUAS(t, "ims", nil)
	res.enum["+15550002"] = "sip:+15550002@ims.test;user=phone"
	res.enum["+15550003"] = "sip:+15550003@ims2.test;user=phone"
	res.enum["+15550004"] = "sip:+15550004@ims3.test;user=phone"
	res.targets["sip:ims.test"] = []dnsreport.Target{target("udp", ims.addr)}
	res.targets["sip:ims2.test"] = []dnsreport.Target{target("udp", dead.addr), target("udp", ims.addr)}
	res.targets["sip:ims3.test"] = []dnsreport.Target{target("udp", busy.addr), target("udp", ims.addr)}
	r := newRing()
	b := startNode(t, r, nodeOpts{resolver: res})
	caller := startUAC(t)
	for _, number := range []string{"+15550002", "+15550003", "+15550004"} {
		start := time.Now()
		c := caller.invite(t, "tel:"+number, b.addr)
		if got := c.wait(t); got.StatusCode != 200 {
			t.Fatalf("%s: final %d", number, got.StatusCode)
		}
		t.Logf("%s answered after %v", number, time.Since(start))
		firstRequest(t, ims.log, c.callID, sip.INVITE)
		c.ack(t)
		c.bye(t)
	}
	busy.log.waitFor(t, "", 2*time.Second, "an INVITE at the 503 target", func(es []wireEntry) bool { return has(es, sip.INVITE, 0) })
}

func TestMaxForwardsAndLoops(t *testing.T) {
	b, _, _, _ := twoNodes(t, ModeProxy, nil)
	caller := startUAC(t)
	setMF := func(n int) func(*sip.Request) {
		return func(r *sip.Request) {
			mf := sip.MaxForwardsHeader(n)
			r.ReplaceHeader(&mf)
		}
	}
	c := caller.invite(t, "sip:bob@"+testDomain, b.addr, setMF(0))
	if res := c.wait(t); res.StatusCode != 483 {
		t.Fatalf("Max-Forwards 0: %d, want 483", res.StatusCode)
	}
	c = caller.invite(t, "sip:bob@"+testDomain, b.addr, setMF(1))
	if res := c.wait(t); res.StatusCode != 483 {
		t.Fatalf("Max-Forwards 1 (0 at the home node): %d, want 483", res.StatusCode)
	}
	// Loops between nodes whose views of the ring differ: see
	// ringviews_test.go (served by the node a DSN node sent the request
	// to; 482 only without the node marker).
}

func TestOptionsToNode(t *testing.T) {
	r := newRing()
	n := startNode(t, r, nodeOpts{})
	caller := startUAC(t)
	for _, ruri := range []string{"sip:" + n.addr, "sip:" + testDomain} {
		for _, mf := range []int{70, 0} {
			req := caller.request(sip.OPTIONS, ruri, n.addr)
			m := sip.MaxForwardsHeader(mf)
			req.ReplaceHeader(&m)
			c := caller.send(t, req)
			res := c.wait(t)
			if res.StatusCode != 200 {
				t.Fatalf("OPTIONS %s mf=%d: %d", ruri, mf, res.StatusCode)
			}
			if a := res.GetHeader("Allow"); a == nil || !strings.Contains(a.Value(), "INVITE") {
				t.Fatalf("Allow %v", a)
			}
			if res.GetHeader("Accept") == nil {
				t.Fatal("no Accept")
			}
		}
	}
}

// TestLargeRequestGoesOverTCP: an INVITE too large for UDP (RFC 3261
// 18.1.1; sipgo refuses it) is forwarded over TCP even where the next hop
// was chosen for UDP, and the dialog record-routes over TCP.
func TestLargeRequestGoesOverTCP(t *testing.T) {
	b, h, ua, _ := twoNodes(t, ModeProxy, nil)
	caller := startUAC(t)
	body := []byte("v=0\r\n" + strings.Repeat("a=x-padding:0123456789abcdef0123456789abcdef0123456789\r\n", 30))
	c := caller.invite(t, "sip:bob@"+testDomain, b.addr, func(r *sip.Request) {
		r.SetTransport("TCP")
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		r.SetBody(body)
	})
	if res := c.wait(t); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	inv := firstRequest(t, ua.log, c.callID, sip.INVITE)
	if inv.Transport() != "TCP" || len(inv.Body()) != len(body) {
		t.Fatalf("INVITE reached the UA over %s with %d body bytes", inv.Transport(), len(inv.Body()))
	}
	rrs := c.final.GetHeaders("Record-Route")
	if len(rrs) != 1 || !strings.Contains(rrs[0].Value(), "transport=tcp") {
		t.Fatalf("Record-Route %v, want H over TCP", rrs)
	}
	c.ack(t)
	if bye := c.bye(t); bye.StatusCode != 200 {
		t.Fatalf("BYE %d", bye.StatusCode)
	}
	_ = h
}

// eventLog collects metrics events.
type eventLog struct {
	mu      sync.Mutex
	es      []Event
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) Observe(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.es = append(l.es, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitN blocks until n events were observed (the handler observes after
// its final response went out, so the caller may see that first).
func (l *eventLog) waitN(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		l.mu.Lock()
		got, ch := len(l.es), l.changed
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%d events, want %d", got, n)
		}
	}
}

func (l *eventLog) summary() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.es {
		out = append(out, fmt.Sprintf("%s/%s/%s/%d/%s", e.Method, e.Route, e.Mode, e.Status, e.Outcome()))
	}
	sort.Strings(out)
	return out
}

func TestMetricsEvents(t *testing.T) {
	r := newRing()
	binds := newFakeBindings()
	mh, mb := newEventLog(), newEventLog()
	h := startNode(t, r, nodeOpts{bindings: binds, metrics: mh})
	b := startNode(t, r, nodeOpts{metrics: mb})
	r.setDefault(h.addr)
	release := make(chan struct{})
	ua := startUAS(t, "bob", ringUntil(release))
	binds.add("sip:bob@"+testDomain, ua.binding())
	caller := startUAC(t)

	c := caller.invite(t, "sip:bob@"+testDomain, b.addr)
	caller.log.waitFor(t, c.callID, 2*time.Second, "180", func(es []wireEntry) bool { return has(es, sip.INVITE, 180) })
	close(release)
	c.wait(t)
	c.ack(t)
	c.bye(t)
	c2 := caller.invite(t, "sip:nobody@"+testDomain, b.addr)
	c2.wait(t)

	ua2 := startUAS(t, "bob", ringUntil(nil))
	binds.mu.Lock()
	binds.m["sip:bob@"+testDomain] = []registrar.Binding{ua2.binding()}
	binds.mu.Unlock()
	c3 := caller.invite(t, "sip:bob@"+testDomain, b.addr)
	caller.log.waitFor(t, c3.callID, 2*time.Second, "180", func(es []wireEntry) bool { return has(es, sip.INVITE, 180) })
	c3.cancel(t)
	c3.wait(t)

	mb.waitN(t, 3)
	mh.waitN(t, 4)
	wantB := []string{"INVITE/proxy/proxy/200/answered", "INVITE/proxy/proxy/404/failed", "INVITE/proxy/proxy/487/cancelled"}
	wantH := []string{"BYE/dialog/proxy/200/answered", "INVITE/home/proxy/200/answered", "INVITE/home/proxy/487/cancelled", "INVITE/local/proxy/404/failed"}
	if got := mb.summary(); fmt.Sprint(got) != fmt.Sprint(wantB) {
		t.Errorf("B events %v, want %v", got, wantB)
	}
	if got := mh.summary(); fmt.Sprint(got) != fmt.Sprint(wantH) {
		t.Errorf("H events %v, want %v", got, wantH)
	}
}

// deafPhone answers every INVITE with 180 and then ignores everything,
// CANCEL included. It stops at test cleanup.
func deafPhone(t *testing.T) (addr string, invites <-chan struct{}) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || req.Method != sip.INVITE {
				continue
			}
			res := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
			res.To().Params.Add("tag", "deaf")
			_, _ = c.WriteTo([]byte(res.String()), from)
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().String(), got
}

// TestTimerCAndCancelTimeout: a branch that rings past Timer C is
// cancelled; one that then never answers counts as 408 after
// CancelTimeout, and the caller gets the final response.
func TestTimerCAndCancelTimeout(t *testing.T) {
	r := newRing()
	binds := newFakeBindings()
	h := startNode(t, r, nodeOpts{bindings: binds, cfg: func(c *Config) {
		c.TimerC = 200 * time.Millisecond
		c.CancelTimeout = 300 * time.Millisecond
	}})
	r.setDefault(h.addr)
	addr, _ := deafPhone(t)
	binds.add("sip:bob@"+testDomain, registrar.Binding{Contact: "sip:bob@" + addr})
	caller := startUAC(t)
	start := time.Now()
	c := caller.invite(t, "sip:bob@"+testDomain, h.addr)
	res := c.wait(t)
	el := time.Since(start)
	if res.StatusCode != 408 {
		t.Fatalf("final %d, want 408", res.StatusCode)
	}
	if el < 500*time.Millisecond {
		t.Fatalf("answered after %v, before Timer C + CancelTimeout", el)
	}
	if !has(caller.log.call(c.callID), sip.INVITE, 180) {
		t.Fatal("180 not relayed")
	}
	t.Logf("408 after %v (Timer C 200ms + cancel timeout 300ms)", el)
}

// TestInDialogRequestsSentToTheEdge: a caller whose INVITE went in through
// an edge node A (not bob's home H), and bob registered through A (Path),
// gets Record-Route [A, H], so its route set is [H, A]. Some callers
// (SIPp) send the ACK and BYE back to the node they first called, A,
// instead of to the top Route, H. A must loose-route them to H (RFC 3261
// 16.4, 16.6 step 7), which sends them back through A to the phone; it
// used to send them to itself and drop them as a loop.
func TestInDialogRequestsSentToTheEdge(t *testing.T) {
	h, a, _, ua, caller := edgeCase(t, false)
	c := caller.invite(t, "sip:bob@"+testDomain, a.addr)
	if res := c.wait(t); res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	rrs := c.final.GetHeaders("Record-Route")
	if len(rrs) != 2 || rrs[0].(*sip.RecordRouteHeader).Address.Port != portOf(a.addr) ||
		rrs[1].(*sip.RecordRouteHeader).Address.Port != portOf(h.addr) {
		t.Fatalf("Record-Route %v, want A, H", rrs)
	}
	ack := c.inDialog(sip.ACK)
	ack.SetDestination(a.addr) // not to the top Route (H)
	if err := caller.client.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	ua.log.waitFor(t, c.callID, 2*time.Second, "ACK at the phone", func(es []wireEntry) bool { return has(es, sip.ACK, 0) })

	bye := c.inDialog(sip.BYE)
	bye.SetDestination(a.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := caller.client.Do(ctx, bye)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("BYE sent to A: %v %v (A saw %v)", res, err, a.log.call(c.callID))
	}
	h.log.waitFor(t, c.callID, 2*time.Second, "ACK and BYE at H", func(es []wireEntry) bool {
		return has(es, sip.ACK, 0) && has(es, sip.BYE, 0)
	})
}

// ackTx is a server transaction that records its response and offers the
// ACK of it the way sipgo does (an unbuffered channel).
type ackTx struct {
	sip.ServerTransaction
	acks chan *sip.Request
	done chan struct{}
	mu   sync.Mutex
	res  []*sip.Response
}

func (t *ackTx) Respond(res *sip.Response) error {
	t.mu.Lock()
	t.res = append(t.res, res)
	t.mu.Unlock()
	return nil
}
func (t *ackTx) Acks() <-chan *sip.Request          { return t.acks }
func (t *ackTx) Done() <-chan struct{}              { return t.done }
func (t *ackTx) OnCancel(sip.FnTxCancel) bool       { return true }
func (t *ackTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (t *ackTx) Err() error                         { return nil }

// TestNon2xxAckIsAbsorbed: after a 302 (any final response >= 300 to an
// INVITE) the proxy reads the ACK from the transaction, so sipgo does not
// park a goroutine on it until Timer I.
func TestNon2xxAckIsAbsorbed(t *testing.T) {
	b, _, _, _ := twoNodes(t, ModeRedirect, nil)
	caller := startUAC(t)
	req := caller.request(sip.INVITE, "sip:bob@"+testDomain, b.addr)
	req.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5999,
		Params: sip.HeaderParams{{K: "branch", V: sip.GenerateBranch()}}})
	req.SetBody(nil)
	req.SetSource("127.0.0.1:5999")
	tx := &ackTx{acks: make(chan *sip.Request), done: make(chan struct{})}
	defer close(tx.done)
	b.p.serveRequest(req, tx)
	tx.mu.Lock()
	codes := []int{}
	for _, r := range tx.res {
		codes = append(codes, r.StatusCode)
	}
	tx.mu.Unlock()
	if len(codes) == 0 || codes[len(codes)-1] != 302 {
		t.Fatalf("responses %v, want ... 302", codes)
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	select {
	case tx.acks <- ack:
	case <-time.After(10 * time.Second):
		t.Fatal("nobody took the ACK of the 302 from the transaction")
	}
}
