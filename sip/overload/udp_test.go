package overload

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// memPacketConn is an in-memory net.PacketConn: ReadFrom returns the
// queued datagrams, then io.EOF; WriteTo records.
type memPacketConn struct {
	in      []datagram
	out     []datagram
	readBuf int // SetReadBuffer's argument
}

type datagram struct {
	b    []byte
	addr net.Addr
}

var _ net.PacketConn = (*memPacketConn)(nil)

func (c *memPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(c.in) == 0 {
		return 0, nil, io.EOF
	}
	d := c.in[0]
	c.in = c.in[1:]
	return copy(b, d.b), d.addr, nil
}

func (c *memPacketConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c.out = append(c.out, datagram{append([]byte(nil), b...), a})
	return len(b), nil
}

func (c *memPacketConn) Close() error { return nil }
func (c *memPacketConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
}
func (c *memPacketConn) SetDeadline(time.Time) error      { return nil }
func (c *memPacketConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memPacketConn) SetWriteDeadline(time.Time) error { return nil }
func (c *memPacketConn) SetReadBuffer(n int) error        { c.readBuf = n; return nil }

var phone = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}

// readAll reads through the wrapper until EOF, with a buffer of n bytes
// (sipgo's is 32 KiB), and returns what the stack would have seen.
func readAll(t *testing.T, pc net.PacketConn, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, n)
	for {
		k, _, err := pc.ReadFrom(buf)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, append([]byte(nil), buf[:k]...))
	}
}

func TestPacketConn(t *testing.T) {
	g, fl, _, m := testGate(t, nil)
	bye := inDialog("BYE", "z9hG4bKbye")
	admitted := invite("z9hG4bKok")
	mem := &memPacketConn{}
	pc := g.PacketConn(mem, nil)
	if mem.readBuf != g.cfg.UDPReadBuffer {
		t.Fatalf("read buffer %d", mem.readBuf)
	}
	mem.in = []datagram{
		{admitted, phone},
		{[]byte("\r\n\r\n"), phone},                         // keep-alive: passes
		{bytes.Repeat([]byte("x"), 32768), phone},           // fills the buffer: dropped
		{[]byte("GET / HTTP/1.0\r\n\r\n"), phone},           // not SIP: dropped
		{[]byte("INVITE sip:b@h SIP/2.0\r\nVia: x"), phone}, // no end of head: dropped
	}
	got := readAll(t, pc, 32768)
	if len(got) != 2 || !bytes.Equal(got[0], admitted) || string(got[1]) != "\r\n\r\n" {
		t.Fatalf("stack saw %q", got)
	}
	if m.drop("udp/oversized") != 1 || m.drop("udp/malformed") != 2 {
		t.Fatalf("drops %d", m.drops())
	}

	// Overloaded: new requests are answered here, in-dialog ones pass, the
	// ACK of the 503 is absorbed, the admitted INVITE's retransmission
	// passes.
	fl.l = Load{InFlight: 10}
	shed := invite("z9hG4bKshed")
	mem.in = []datagram{{shed, phone}, {bye, phone}, {admitted, phone}}
	got = readAll(t, pc, 32768)
	if len(got) != 2 || !bytes.Equal(got[0], bye) || !bytes.Equal(got[1], admitted) {
		t.Fatalf("stack saw %q", got)
	}
	if len(mem.out) != 1 {
		t.Fatalf("%d datagrams sent, want one 503", len(mem.out))
	}
	res := parseResponse(t, mem.out[0].b)
	if res.StatusCode != 503 || res.GetHeader("Retry-After").Value() != "5" || mem.out[0].addr.String() != phone.String() {
		t.Fatalf("sent %q to %v", mem.out[0].b, mem.out[0].addr)
	}
	tag, _ := res.To().Params.Get("tag")
	ack := msg("", "ACK sip:bob@dsn.test SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKshed;rport",
		"From: <sip:alice@dsn.test>;tag=a1", "To: <sip:bob@dsn.test>;tag="+tag, "Call-ID: call-z9hG4bKshed", "CSeq: 1 ACK")
	mem.in = []datagram{{ack, phone}}
	if got := readAll(t, pc, 32768); len(got) != 0 {
		t.Fatalf("ACK of the 503 reached the stack: %q", got)
	}
	if m.rej("INVITE/inflight") != 1 {
		t.Fatalf("rejections %d", m.rej("INVITE/inflight"))
	}
}

func TestPacketConnAnswersAtSentByWithoutRport(t *testing.T) {
	g, fl, _, _ := testGate(t, nil)
	fl.l = Load{InFlight: 10}
	mem := &memPacketConn{in: []datagram{{msg("", "OPTIONS sip:h SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.7:5099;branch=z9hG4bKo", "To: <sip:h>"), phone}}}
	readAll(t, g.PacketConn(mem, nil), 32768)
	if len(mem.out) != 1 || mem.out[0].addr.String() != "192.0.2.7:5099" {
		t.Fatalf("sent %v", mem.out)
	}
	if strings.Contains(string(mem.out[0].b), "received=") {
		t.Fatalf("received added without rport: %s", mem.out[0].b)
	}
}
