package fleet

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// WaitUDPBound polls until something holds the UDP address addr (e.g. a
// SIPp UAS started in the background has bound its port), failing the
// test after d. It reads the kernel's socket tables (/proc/net/udp and
// udp6) rather than trying to bind addr itself: a probe that binds can
// take the port at the moment the process starts, which then fails to
// bind and exits.
func WaitUDPBound(t TB, addr string, d time.Duration) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatalf("WaitUDPBound %s: %v", addr, err)
	}
	deadline := time.Now().Add(d)
	for !udpBound(ap) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing bound UDP %s within %s", addr, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// udpBound reports whether a UDP socket is bound to ap, or to the
// wildcard address and ap's port.
func udpBound(ap netip.AddrPort) bool {
	port := fmt.Sprintf(":%04X ", ap.Port())
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 2 || !strings.Contains(fs[1]+" ", port) {
				continue
			}
			host := fs[1][:strings.IndexByte(fs[1], ':')]
			if strings.Trim(host, "0") == "" || host == procHex(ap.Addr()) {
				return true
			}
		}
	}
	return false
}

// procHex renders an IPv4 address as /proc/net/udp does (little-endian
// hex on x86).
func procHex(a netip.Addr) string {
	if !a.Unmap().Is4() {
		return ""
	}
	b := a.Unmap().As4()
	return fmt.Sprintf("%02X%02X%02X%02X", b[3], b[2], b[1], b[0])
}
