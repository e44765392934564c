package overload

import (
	"net"
	"net/netip"
	"sync"
)

// PacketConn wraps the UDP socket a SIP stack reads from. ReadFrom hands
// the stack only what the gate admits: datagrams over Config.MaxMessage
// (or filling the caller's buffer, so possibly cut) and datagrams that
// are not SIP messages are dropped and counted; a rejected request is
// answered 503 from the read goroutine itself, with no transaction, no
// goroutine and no state (its retransmissions get the same answer); the
// ACK of such a 503 is absorbed. Everything else passes unchanged, and
// writes go straight to the socket.
//
// The stack's read loop is single-threaded, so the rejection work is
// bounded by one goroutine; what the socket cannot take in meanwhile the
// kernel drops.
//
// A request whose method st takes (st may be nil) is not handed to the
// stack: the gate decides on it by DecideStateless and passes it to
// st.Serve, whose response goes out on pc.
//
// It asks for a receive buffer of Config.UDPReadBuffer bytes when pc
// allows (best effort: the kernel caps it).
func (g *Gate) PacketConn(pc net.PacketConn, st Stateless) net.PacketConn {
	if rb, ok := pc.(interface{ SetReadBuffer(int) error }); ok && g.cfg.UDPReadBuffer > 0 {
		_ = rb.SetReadBuffer(g.cfg.UDPReadBuffer)
	}
	return &packetConn{PacketConn: pc, g: g, st: st}
}

type packetConn struct {
	net.PacketConn
	g  *Gate
	st Stateless
}

var respBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (c *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, _, err := c.next(b)
	return n, addr, err
}

// next reads the next datagram the gate admits into b, with the Call-ID
// of its head (nil for a keep-alive), which points into b.
func (c *packetConn) next(b []byte) (int, net.Addr, []byte, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 {
			return n, addr, nil, err
		}
		if n >= len(b) || n > c.g.cfg.MaxMessage {
			c.g.metrics.Dropped("udp", DropOversized)
			continue
		}
		data := b[:n]
		if isKeepAlive(data) {
			return n, addr, nil, nil
		}
		h, err := ParseHead(data)
		if err != nil {
			c.g.metrics.Dropped("udp", DropMalformed)
			continue
		}
		if c.st != nil && !h.Response && c.st.Takes(h.Method) {
			c.serveStateless(data, &h, addr)
			continue
		}
		switch d := c.g.Admit(&h); d.Verdict {
		case Admit:
			return n, addr, h.CallID, nil
		case Reject:
			c.reject(data, &h, addr)
		}
	}
}

// reject answers a request 503 with Retry-After, statelessly.
func (c *packetConn) reject(data []byte, h *Head, addr net.Addr) {
	src := addrPort(addr)
	bp := respBufs.Get().(*[]byte)
	resp, to := appendResponse((*bp)[:0], data, h, 503, "Service Unavailable", c.g.RetryAfterSeconds(), src)
	if to.IsValid() {
		_, _ = c.PacketConn.WriteTo(resp, net.UDPAddrFromAddrPort(to))
	}
	*bp = resp
	respBufs.Put(bp)
}

// addrPort converts a datagram's source address (an IPv4 address as
// such, not IPv4-mapped).
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if u, ok := a.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	} else {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// isKeepAlive reports a datagram of only CRs and LFs (RFC 5626 keep-alive),
// which the stack skips.
func isKeepAlive(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
