package tcp

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"
)

// udpPacketSize is the receive buffer of one UDP packet, the largest a
// UDP datagram can be (memberlist's own transport uses the same).
const udpPacketSize = 65536

// memberlistTransport is the view of the Transport that memberlist uses:
// every UDP packet on the port, and the TCP streams whose first byte is
// 'M'. It moves bytes only; memberlist encrypts them with its own keyring.
type memberlistTransport struct {
	t        *Transport
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	attached atomic.Bool   // Memberlist was called: deliver, do not drop
	done     chan struct{} // closed by Shutdown
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*memberlistTransport)(nil)

func newMemberlistTransport(t *Transport) *memberlistTransport {
	return &memberlistTransport{
		t:        t,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
}

// Memberlist returns the memberlist transport that shares this
// Transport's port: set it as memberlist.Config.Transport (BindAddr and
// BindPort of that config are then unused). There is one per Transport;
// memberlist's Shutdown detaches it without closing the sockets, which
// stay open for DHT RPCs until Close. Until Memberlist is called, and
// after that Shutdown, packets and streams for memberlist are dropped.
func (t *Transport) Memberlist() memberlist.NodeAwareTransport {
	t.ml.attached.Store(true)
	return t.ml
}

// FinalAdvertiseAddr returns the Transport's advertised IP and port. The
// arguments (memberlist's own AdvertiseAddr and AdvertisePort) are
// ignored: the Transport owns the port, so its advertise address is the
// one peers can reach.
func (m *memberlistTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return m.t.ip, m.t.port, nil
}

// WriteTo sends one UDP packet from the shared port.
func (m *memberlistTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return m.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one UDP packet from the shared port.
func (m *memberlistTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	udpAddr, err := net.ResolveUDPAddr("udp", a.Addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("dht/tcp: memberlist packet to %s: %w", a.Addr, err)
	}
	_, err = m.t.udp.WriteTo(b, udpAddr)
	return time.Now(), err
}

// PacketCh delivers the UDP packets received on the shared port.
func (m *memberlistTransport) PacketCh() <-chan *memberlist.Packet { return m.packetCh }

// DialTimeout opens a memberlist stream to addr.
func (m *memberlistTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return m.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a memberlist stream: a TCP connection whose
// first byte, 'M', tells the remote Transport to hand it to memberlist.
func (m *memberlistTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dialer := net.Dialer{Timeout: timeout}
	nc, err := dialer.DialContext(m.t.ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := nc.Write([]byte{prefixMemberlist}); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("dht/tcp: memberlist stream to %s: %w", a.Addr, err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nc, nil
}

// StreamCh delivers the memberlist streams accepted on the shared port,
// with the prefix byte consumed.
func (m *memberlistTransport) StreamCh() <-chan net.Conn { return m.streamCh }

// Shutdown detaches memberlist; the sockets stay open for the DHT.
func (m *memberlistTransport) Shutdown() error {
	m.once.Do(func() { close(m.done) })
	return nil
}

// live reports whether memberlist is attached and not shut down.
func (m *memberlistTransport) live() bool {
	if !m.attached.Load() {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// deliverStream hands nc to memberlist; false (nc not taken) when no
// memberlist is listening or the transport closes first.
func (m *memberlistTransport) deliverStream(nc net.Conn) bool {
	if m.live() {
		select {
		case m.streamCh <- nc:
			return true
		case <-m.done:
		case <-m.t.ctx.Done():
		}
	}
	m.t.stats.streamsDropped.Add(1)
	return false
}

// udpLoop reads UDP packets and hands them to memberlist.
func (t *Transport) udpLoop() {
	buf := make([]byte, udpPacketSize)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		ts := time.Now()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.log.Warn("udp read failed", zap.Error(err))
			continue
		}
		if n == 0 {
			continue
		}
		if !t.ml.live() {
			t.stats.packetsDropped.Add(1)
			continue
		}
		select {
		case t.ml.packetCh <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: ts}:
		case <-t.ml.done:
			t.stats.packetsDropped.Add(1)
		case <-t.ctx.Done():
			return
		}
	}
}
