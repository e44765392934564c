package fleet

import (
	"net"
	"time"
)

// WaitUDPBound polls until something holds the UDP address addr (e.g. a
// SIPp UAS started in the background has bound its port), failing the
// test after d.
func WaitUDPBound(t TB, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("nothing bound UDP %s within %s", addr, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
