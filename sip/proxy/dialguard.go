package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Errors of the DialGuard.
var (
	// ErrDialRefused: sipgo tried to open a connection to an address the
	// proxy did not choose (a response's top Via, say).
	ErrDialRefused = errors.New("proxy: outbound connection refused: not a next hop of this node")
	// ErrNoDNS: sipgo tried to resolve a name; the proxy resolves every
	// next hop itself (dnsreport) and hands sipgo IP addresses only.
	ErrNoDNS = errors.New("proxy: sipgo may not resolve names")
)

// DialGuard decides which outbound connections sipgo may open. sipgo
// sends a response whose TCP connection has closed by connecting to the
// top Via's host (looked up in DNS when it is a name) and port: any peer
// could make the node do DNS look-ups and open connections to arbitrary
// hosts and ports (RFC 3261 section 18.2.2 allows only the received IP
// address, never a name). With the guard installed (UserAgentOptions),
// sipgo resolves no names at all, and opens a TCP or TLS connection only
// to an address the proxy is sending a request to at that moment (it
// permits each next hop just before it sends); everything else is refused
// and counted. A response whose connection has gone is then lost, as it
// would be over UDP; the peer's retransmission or timer takes over.
// Safe for concurrent use.
type DialGuard struct {
	clock   Clock
	ttl     time.Duration
	timeout time.Duration

	mu      sync.Mutex
	permits map[netip.AddrPort]time.Time // until when a dial may start

	refused, lookups atomic.Uint64
}

// NewDialGuard returns a guard; a permit lasts ttl (how long sending a
// request may take to reach the dial: Config.LookupTimeout is right), and
// a connection attempt at most timeout. A nil clock means SystemClock.
func NewDialGuard(clock Clock, ttl, timeout time.Duration) *DialGuard {
	if clock == nil {
		clock = SystemClock{}
	}
	return &DialGuard{clock: clock, ttl: ttl, timeout: timeout, permits: make(map[netip.AddrPort]time.Time)}
}

// UserAgentOptions are the sipgo user agent options that install the
// guard: a DNS resolver that resolves nothing (names in /etc/hosts aside,
// which the dialer then refuses) and a TCP transport whose dialer asks
// the guard.
func (g *DialGuard) UserAgentOptions() []sipgo.UserAgentOption {
	res := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		g.lookups.Add(1)
		return nil, ErrNoDNS
	}}
	tcp := &sip.TransportTCP{DialerCreate: g.Dialer}
	return []sipgo.UserAgentOption{
		sipgo.WithUserAgentDNSResolver(res),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerTransports(sip.TransportsConfig{TCP: tcp})),
	}
}

// Dialer is sip.TransportTCP.DialerCreate: a dialer that connects only to
// permitted addresses.
func (g *DialGuard) Dialer(laddr net.Addr) net.Dialer {
	return net.Dialer{Timeout: g.timeout, LocalAddr: laddr, Control: g.control}
}

func (g *DialGuard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err == nil && g.allowed(ap) {
		return nil
	}
	g.refused.Add(1)
	return fmt.Errorf("%w: %s", ErrDialRefused, address)
}

// permit lets a connection to a be opened during the next ttl.
func (g *DialGuard) permit(a netip.AddrPort) {
	now := g.clock.Now()
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.permits) >= 256 {
		for k, until := range g.permits {
			if !now.Before(until) {
				delete(g.permits, k)
			}
		}
	}
	g.permits[a] = now.Add(g.ttl)
}

func (g *DialGuard) allowed(a netip.AddrPort) bool {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	now := g.clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.permits[a]
	return ok && now.Before(until)
}

// DialGuardStats are the guard's counters.
type DialGuardStats struct {
	Refused uint64 // connection attempts to addresses the proxy did not choose
	Lookups uint64 // name look-ups sipgo attempted
}

// Stats returns the counters.
func (g *DialGuard) Stats() DialGuardStats {
	return DialGuardStats{Refused: g.refused.Load(), Lookups: g.lookups.Load()}
}

// allowDial permits the connection a request about to be sent may need
// (its destination, an IP address and port the proxy chose), when it
// goes over a connection-oriented transport.
func (p *Proxy) allowDial(req *sip.Request) {
	g := p.deps.Dials
	if g == nil {
		return
	}
	switch req.Transport() {
	case "TCP", "TLS", "tcp", "tls":
	default:
		return
	}
	if ap, err := netip.ParseAddrPort(req.Destination()); err == nil {
		g.permit(ap)
	}
}
