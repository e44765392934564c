package overload

import (
	"bytes"
	"net"
	"net/netip"
	"time"
)

// Stateless serves requests of some methods itself, below the SIP stack:
// no server transaction, no goroutine of the stack and no place in the
// transaction window, which is what such a request would otherwise cost
// for 32 s after its answer. The node serves REGISTER over UDP this way:
// a repeated REGISTER is harmless (RFC 3261 10.3; the registrar answers a
// retransmission, same Call-ID and CSeq, with the bindings it holds), so
// its registrar need not remember its answers, as Kamailio's does not.
type Stateless interface {
	// Takes reports whether requests of this method are served here.
	Takes(method string) bool
	// Serve takes one request: msg is the whole datagram, valid only
	// during the call (Serve copies what it keeps), from its source. It
	// must not block the caller (the socket's read goroutine): it sends
	// the response later, with reply, at most once, from any goroutine.
	// It returns false when it cannot take more now; the gate then
	// answers 503 (ReasonInflight).
	Serve(msg []byte, from netip.AddrPort, reply func(resp []byte)) bool
}

// DecideStateless is Decide's rule for a request a Stateless serves: it
// opens no transaction, so it takes no place in the window and is not
// paced into it. A retransmission of a request rejected in the last
// shedTTL is rejected again (ReasonRepeat); any other is rejected while
// InFlight, Goroutines, QueueDelay or HeapBytes is at its limit or the
// token bucket (Rate, Burst) is empty, and admitted otherwise.
func (g *Gate) DecideStateless(h *Head, load func() Load, now time.Time) Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shed.expire(now.UnixNano())
	key := g.txKey(h, h.Method)
	if g.shed.has(key) {
		return g.reject(ReasonRepeat, now, key)
	}
	if r := g.limit(load, now); r != "" {
		return g.reject(r, now, key)
	}
	g.admitted.Add(1)
	return Decision{}
}

// Refuse rejects a request the gate had admitted but whose handler could
// not take it (a Stateless at its bound): it is counted, and remembered
// like any rejection so that its retransmissions get 503 too.
func (g *Gate) Refuse(h *Head, r Reason) Decision {
	now := g.now()
	g.mu.Lock()
	d := g.reject(r, now, g.txKey(h, h.Method))
	g.mu.Unlock()
	g.metrics.Rejected(h.Method, r)
	return d
}

// serveStateless hands an admitted request to st, answering 503 itself
// when the gate or st refuses it.
func (c *packetConn) serveStateless(data []byte, h *Head, addr net.Addr) {
	d := c.g.DecideStateless(h, c.g.load, c.g.now())
	if d.Verdict == Reject {
		c.g.metrics.Rejected(h.Method, d.Reason)
		c.reject(data, h, addr)
		return
	}
	src := addrPort(addr)
	to := ReplyAddr(data, h, src)
	if !to.IsValid() {
		c.g.metrics.Dropped("udp", DropMalformed)
		return
	}
	dst := net.UDPAddrFromAddrPort(to)
	reply := func(resp []byte) { _, _ = c.PacketConn.WriteTo(resp, dst) }
	if !c.st.Serve(data, src, reply) {
		c.g.Refuse(h, ReasonInflight)
		c.reject(data, h, addr)
	}
}

// ReplyAddr is where a response to the request msg (head h) that came in
// over UDP from src goes (RFC 3261 18.2.2, RFC 3581 4): src when the top
// Via asks for rport, else src's address with the Via's sent-by port
// (5060 when it has none). The zero AddrPort when src is not valid.
func ReplyAddr(msg []byte, h *Head, src netip.AddrPort) netip.AddrPort {
	if !src.IsValid() {
		return netip.AddrPort{}
	}
	lineEnd := bytes.Index(msg, []byte("\r\n"))
	it := fields{b: msg, pos: lineEnd + 2, end: h.Len - 2}
	for it.next() {
		if it.name != "via" {
			continue
		}
		parm := firstViaParm(it.value.of(msg))
		if param(parm, "rport") != nil {
			return src
		}
		return netip.AddrPortFrom(src.Addr(), uint16(sentByPort(parm)))
	}
	return src
}
