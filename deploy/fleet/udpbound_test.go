package fleet

import (
	"net"
	"net/netip"
	"testing"
)

func TestUDPBoundReadsProc(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(c.LocalAddr().String())
	if !udpBound(ap) {
		t.Fatal("bound socket not seen")
	}
	if udpBound(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), ap.Port())) {
		t.Fatal("another address with the port seen")
	}
	c.Close()
	if udpBound(ap) {
		t.Fatal("closed socket seen")
	}
}
