package node

import (
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, c *net.UDPConn, to string, b string) {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP([]byte(b), ua); err != nil {
		t.Fatal(err)
	}
}

// udpExchange sends b to the node's SIP UDP address from c and returns
// the next datagram that comes back within a few seconds ("" if none).
func udpExchange(t *testing.T, c *net.UDPConn, to string, b string) string {
	t.Helper()
	send(t, c, to, b)
	buf := make([]byte, 65536)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func metric(t *testing.T, n *Node, name string) string {
	t.Helper()
	_, body := get(t, n, "/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not exported", name)
	}
	return m[1]
}

// REGISTER over UDP is answered without a SIP transaction: a
// retransmission (the same datagram) is handled again and answered with
// the binding the first one made, and the overload gate's transaction
// window stays empty; what sipgo's parser refuses is dropped and counted
// as sipgo's own input is.
func TestRegisterOverUDPIsStateless(t *testing.T) {
	n := startNode(t)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	reg := strings.ReplaceAll("REGISTER sip:dsn.test SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKstateless1;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:alice@dsn.test>;tag=r1\r\n"+
		"To: <sip:alice@dsn.test>\r\n"+
		"Call-ID: stateless-1\r\n"+
		"CSeq: 7 REGISTER\r\n"+
		"Contact: <sip:alice@127.0.0.1:PORT>;expires=600\r\n"+
		"Content-Length: 0\r\n\r\n", "PORT", port)
	// again returns reg with CSeq seq and a new branch.
	again := func(seq, branch string) string {
		return strings.ReplaceAll(strings.ReplaceAll(reg, "CSeq: 7 ", "CSeq: "+seq+" "), "stateless1", branch)
	}
	for i := range 2 {
		res := udpExchange(t, c, n.SIPAddr(), reg)
		if !strings.HasPrefix(res, "SIP/2.0 200 ") || !strings.Contains(res, "expires=600") ||
			!strings.Contains(res, "rport="+port) || !strings.Contains(res, "CSeq: 7 REGISTER") {
			t.Fatalf("answer %d: %q", i, res)
		}
	}
	if code, body := get(t, n, "/v1/bindings?aor=sip:alice@dsn.test"); code != 200 || strings.Count(body, "sip:alice@127.0.0.1:") != 1 {
		t.Fatalf("bindings: %d %s", code, body)
	}
	if v := metric(t, n, "dsn_sip_registers_total"); v != "2" {
		t.Fatalf("dsn_sip_registers_total %s", v)
	}
	if v := metric(t, n, "dsn_sip_transactions"); v != "0" {
		t.Fatalf("dsn_sip_transactions %s: a REGISTER took a place in the window", v)
	}
	// A lower CSeq with the same Call-ID is out of order.
	if res := udpExchange(t, c, n.SIPAddr(), again("6", "stateless0")); !strings.HasPrefix(res, "SIP/2.0 500 ") {
		t.Fatalf("stale REGISTER: %q", res)
	}
	// The gate's head parser takes it; sipgo's refuses the CSeq: dropped
	// and counted, no answer (the next datagram is the next REGISTER's).
	send(t, c, n.SIPAddr(), again("seven", "stateless2"))
	for deadline := time.Now().Add(5 * time.Second); metric(t, n, "dsn_sip_unparsable_dropped_total") != "1"; {
		if time.Now().After(deadline) {
			t.Fatal("unparsable REGISTER not counted")
		}
		runtime.Gosched()
	}
	if res := udpExchange(t, c, n.SIPAddr(), again("8", "stateless3")); !strings.HasPrefix(res, "SIP/2.0 200 ") || !strings.Contains(res, "CSeq: 8 REGISTER") {
		t.Fatalf("after the unparsable one: %q", res)
	}
}
