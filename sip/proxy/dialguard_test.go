package proxy

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestDialGuardPermits(t *testing.T) {
	clock := newFakeClock()
	g := NewDialGuard(clock, 3*time.Second, time.Second)
	a := netip.MustParseAddrPort("192.0.2.20:5060")
	if err := g.control("tcp4", a.String(), nil); !errors.Is(err, ErrDialRefused) {
		t.Fatalf("unpermitted: %v", err)
	}
	g.permit(a)
	if err := g.control("tcp4", a.String(), nil); err != nil {
		t.Fatalf("permitted: %v", err)
	}
	if err := g.control("tcp4", "192.0.2.20:5061", nil); err == nil {
		t.Fatal("another port of a permitted host passed")
	}
	g.permit(netip.MustParseAddrPort("[::ffff:192.0.2.21]:5060"))
	if err := g.control("tcp4", "192.0.2.21:5060", nil); err != nil {
		t.Fatalf("mapped address: %v", err)
	}
	clock.Advance(3 * time.Second)
	if err := g.control("tcp4", a.String(), nil); err == nil {
		t.Fatal("expired permit passed")
	}
	if err := g.control("tcp", "localhost:5060", nil); err == nil {
		t.Fatal("a name passed")
	}
	if s := g.Stats(); s.Refused != 4 {
		t.Fatalf("stats %+v", s)
	}
	// Permits are swept, not kept for ever.
	for i := range 300 {
		g.permit(netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(1000+i)))
	}
	clock.Advance(4 * time.Second)
	g.permit(a)
	g.mu.Lock()
	n := len(g.permits)
	g.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d permits kept after they expired", n)
	}
}

// TestResponseNeverDialsVia: a TCP request whose connection is gone when
// sipgo answers it (the sender closed it, or the node did at a framing
// error right after it) has its response sent by connecting to the top
// Via's host and port. With the guard, the node connects nowhere and looks
// up no name: a peer cannot make it open connections to arbitrary hosts
// and ports or query DNS (RFC 3261 18.2.2 allows the source address
// only). The node keeps answering.
func TestResponseNeverDialsVia(t *testing.T) {
	r := newRing()
	n := startNode(t, r, nodeOpts{dials: true})
	r.setDefault(n.addr)
	victim, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var dialled atomic.Int64
	go func() {
		for {
			c, err := victim.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			c.Close()
		}
	}()
	vport := victim.Addr().(*net.TCPAddr).Port
	guard := n.p.deps.Dials
	for i := 0; i < 100 && (guard.Stats().Refused == 0 || guard.Stats().Lookups == 0); i++ {
		host := "127.0.0.1"
		if i%2 == 1 {
			host = "victim.invalid"
		}
		msg := rawRequest(replaceLine(reqText("OPTIONS", "sip:"+n.addr), "Via:",
			"Via: SIP/2.0/TCP "+host+":"+strconv.Itoa(vport)+";branch=z9hG4bK-guard"+strconv.Itoa(i))...)
		c, err := net.Dial("tcp4", n.addr)
		if err != nil {
			t.Fatal(err)
		}
		// Stray bytes after the message: sipgo closes the connection at
		// once, racing the handler that answers the OPTIONS.
		_, _ = c.Write([]byte(msg + "\x01\x02garbage\r\n\r\n"))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		time.Sleep(time.Millisecond)
	}
	st := guard.Stats()
	if st.Refused == 0 || st.Lookups == 0 {
		t.Fatalf("sipgo never fell back to the Via host in 100 tries (stats %+v); the test did not exercise the guard", st)
	}
	if d := dialled.Load(); d != 0 {
		t.Fatalf("the node connected to the Via's host:port %d times", d)
	}
	if got := rawExchange(t, n.addr, rawRequest(reqText("OPTIONS", "sip:"+n.addr)...), 2*time.Second); got == "" || got[:11] != "SIP/2.0 200" {
		t.Fatalf("node not answering: %q", got)
	}
	t.Logf("guard: %+v", st)
}

// TestProxyDialsItsHops: with the guard, the proxy still opens TCP
// connections to the next hops it chose (a request too big for UDP goes
// to the phone over TCP).
func TestProxyDialsItsHops(t *testing.T) {
	r := newRing()
	b := newFakeBindings()
	n := startNode(t, r, nodeOpts{dials: true, bindings: b})
	r.setDefault(n.addr)
	ua := startUAS(t, "bob", nil)
	b.add("sip:bob@"+testDomain, ua.binding())
	uac := startUAC(t)
	body := []byte("v=0\r\n" + strings.Repeat("a=x-padding:0123456789abcdef0123456789abcdef0123456789\r\n", 30))
	call := uac.invite(t, "sip:bob@"+testDomain, n.addr, func(r *sip.Request) {
		r.SetTransport("TCP")
		r.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		r.SetBody(body)
	})
	if res := call.wait(t); res.StatusCode != 200 {
		t.Fatalf("%s", res.StartLine())
	}
	if got := firstRequest(t, ua.log, call.callID, sip.INVITE); got.Transport() != "TCP" {
		t.Fatalf("the large INVITE reached the phone over %s", got.Transport())
	}
	if s := n.p.deps.Dials.Stats(); s.Refused != 0 {
		t.Fatalf("guard refused the proxy's own hop: %+v", s)
	}
}
