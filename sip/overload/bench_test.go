package overload

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func BenchmarkParseHead(b *testing.B) {
	m := invite("z9hG4bKbench")
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHead(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide: the gate's cost per new request it admits (branch
// tracked) and per request it sheds.
func BenchmarkDecide(b *testing.B) {
	for _, shed := range []bool{false, true} {
		b.Run(fmt.Sprintf("shed=%v", shed), func(b *testing.B) {
			g, fl, clk, _ := testGate(b, func(c *Config) { c.MaxTransactions = 1 << 14 })
			if shed {
				fl.l = Load{InFlight: 100}
			}
			heads := make([]Head, 1024)
			for i := range heads {
				heads[i] = head(b, invite(fmt.Sprintf("z9hG4bK%d", i)))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g.Decide(&heads[i%len(heads)], fl.get, clk.t)
				clk.advance(time.Microsecond)
				i++
			}
		})
	}
}

// discardPacketConn counts and discards writes.
type discardPacketConn struct {
	memPacketConn
	writes int
}

func (c *discardPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.writes++
	return len(b), nil
}

// BenchmarkUDPReject: what the UDP read loop spends on one shed INVITE
// (head, decision, stateless 503), without the socket.
func BenchmarkUDPReject(b *testing.B) {
	g, fl, _, _ := testGate(b, nil)
	fl.l = Load{InFlight: 100}
	dc := &discardPacketConn{}
	pc := &packetConn{PacketConn: dc, g: g}
	m := invite("z9hG4bKshed")
	b.ReportAllocs()
	for b.Loop() {
		h, _ := ParseHead(m)
		if g.Admit(&h).Verdict == Reject {
			pc.reject(m, &h, phone)
		}
	}
	if dc.writes == 0 {
		b.Fatal("nothing rejected")
	}
}

func BenchmarkFramer(b *testing.B) {
	m := invite("z9hG4bKframe")
	f := newFramer(65535)
	b.SetBytes(int64(len(m)))
	b.ReportAllocs()
	for b.Loop() {
		f.write(m)
		if _, _, _, err := f.next(); err != nil {
			b.Fatal(err)
		}
	}
}
