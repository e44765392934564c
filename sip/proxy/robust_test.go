package proxy

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/sip/registrar"
	"github.com/emiago/sipgo/sip"
)

// rawExchange sends one datagram to addr and returns the status line of
// the first final response (or "" if none comes within d).
func rawExchange(t *testing.T, addr, msg string, d time.Duration) string {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(d)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return ""
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
}

// rawRequest joins lines into a datagram with a fresh Via branch, so that
// sipgo does not take it for a retransmission of an earlier test request.
func rawRequest(lines ...string) string {
	s := strings.Join(lines, "\r\n") + "\r\n\r\n"
	return strings.Replace(s, "z9hG4bK-test1", "z9hG4bK-"+sip.GenerateTagN(10), 1)
}

// TestMalformedRequests: requests a proxy cannot route get 400 (or the
// specific 4xx) when a response can be formed at all; the node keeps
// serving.
func TestMalformedRequests(t *testing.T) {
	r := newRing()
	n := startNode(t, r, nodeOpts{})
	r.setDefault(n.addr)
	cases := []struct {
		name string
		msg  string
		want string
	}{
		{"CSeq method mismatch", rawRequest(replaceLine(reqText("INVITE", "sip:bob@"+testDomain), "CSeq:", "CSeq: 1 BYE")...), "SIP/2.0 400"},
		{"no From", rawRequest(dropLine(reqText("MESSAGE", "sip:bob@"+testDomain), "From:")...), "SIP/2.0 400"},
		{"no Call-ID", rawRequest(dropLine(reqText("MESSAGE", "sip:bob@"+testDomain), "Call-ID:")...), "SIP/2.0 400"},
		{"unsupported scheme", rawRequest(reqText("INVITE", "im:bob@"+testDomain)...), "SIP/2.0 416"},
		{"Proxy-Require", rawRequest(reqText("INVITE", "sip:bob@"+testDomain, "Proxy-Require: sec-agree")...), "SIP/2.0 420"},
		{"Max-Forwards 0", rawRequest(replaceLine(reqText("MESSAGE", "sip:bob@"+testDomain), "Max-Forwards:", "Max-Forwards: 0")...), "SIP/2.0 483"},
		{"CANCEL of nothing", rawRequest(reqText("CANCEL", "sip:bob@"+testDomain)...), "SIP/2.0 481"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawExchange(t, n.addr, tc.msg, 2*time.Second); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %s", got, tc.want)
			}
		})
	}
	if got := rawExchange(t, n.addr, rawRequest(reqText("OPTIONS", "sip:"+n.addr)...), 2*time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("node not answering after bad input: %q", got)
	}
}

func dropLine(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// tortureFiles are the RFC 4475 torture messages (from sipgo's testdata).
func tortureFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/torture/*.dat")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no torture messages: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// routeAll runs a parsed message through everything the proxy does to a
// request without sockets: validation, loop hash, Route pre-processing,
// routing, and building every branch's copy.
func routeAll(e *routeEnv, data []byte) {
	m, err := sip.ParseMessage(data)
	if err != nil {
		return
	}
	req, ok := m.(*sip.Request)
	if !ok {
		if res, ok := m.(*sip.Response); ok {
			chooseBest([]*sip.Response{res, resp(486)})
			_ = dialogKey(res)
		}
		return
	}
	_ = dialogKey(req)
	if validate(req) != nil {
		return
	}
	loop := e.p.loopHash(req)
	_ = e.p.checkHops(req, loop)
	work := e.p.baseCopy(req, callerSrc)
	in := e.p.preprocess(work, callerSrc)
	d := e.p.decide(context.Background(), in)
	for i := range d.branches {
		for _, h := range d.branches[i].hops {
			out := e.p.forwardCopy(work, &d.branches[i], h, e.p.newBranch(loop), true, req.Transport())
			_ = out.String()
			_ = cancelFor(out).String()
		}
	}
}

func fuzzEnv(t testing.TB) *routeEnv {
	cfg := DefaultConfig()
	cfg.Domain, cfg.Advertise = testDomain, selfAddr
	cfg.CallPolicy = PolicyAccept
	e := &routeEnv{ring: newRing(), b: newFakeBindings(), res: newFakeResolver()}
	e.ring.setDefault(selfAddr)
	e.res.locateFn = func(string) ([]dnsreport.Target, error) {
		return []dnsreport.Target{target("udp", "198.51.100.1:5060")}, nil
	}
	e.res.enum["+15551234"] = "sip:bob@" + testDomain
	e.b.add("sip:bob@"+testDomain, registrar.Binding{Contact: "sip:bob@192.0.2.20:5062", Path: []string{"<sip:192.0.2.50;lr>"}})
	p, err := New(cfg, Deps{Locator: e.ring.locator(selfAddr), Bindings: e.b, Resolver: e.res, Trusted: trustedSet{callerSrc.Addr.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

// namesNonLoopbackIP reports whether a message's start line or Route
// headers hold an IPv4 literal outside 127/8: the live node would forward
// there, and tests send only to loopback.
func namesNonLoopbackIP(data []byte) bool {
	for i, line := range strings.Split(string(data), "\r\n") {
		if i > 0 && !strings.HasPrefix(strings.ToLower(line), "route") {
			continue
		}
		for _, m := range ipv4Literal.FindAllString(line, -1) {
			if ip, err := netip.ParseAddr(m); err == nil && !ip.IsLoopback() {
				return true
			}
		}
	}
	return false
}

var ipv4Literal = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)

// TestTortureMessages runs every RFC 4475 torture message through the
// routing pipeline, and sends each to a live node, which must survive and
// keep answering.
func TestTortureMessages(t *testing.T) {
	e := fuzzEnv(t)
	files := tortureFiles(t)
	for name, data := range files {
		t.Run(name, func(t *testing.T) { routeAll(e, data) })
	}
	r := newRing()
	n := startNode(t, r, nodeOpts{})
	r.setDefault(n.addr)
	c, err := net.Dial("udp4", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, data := range files {
		if namesNonLoopbackIP(data) {
			t.Logf("%s: not sent to the live node (names a non-loopback IP)", name)
			continue
		}
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if got := rawExchange(t, n.addr, rawRequest(reqText("OPTIONS", "sip:"+n.addr)...), 2*time.Second); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("node not answering after the torture messages: %q", got)
	}
}

// FuzzRoute: no input makes routing panic.
func FuzzRoute(f *testing.F) {
	for _, data := range tortureFiles(f) {
		f.Add(data)
	}
	f.Add([]byte(rawRequest(reqText("INVITE", "tel:+15551234")...)))
	f.Add([]byte(rawRequest(withToTag(reqText("BYE", "sip:bob@192.168.1.20:5060", "Route: <sip:"+selfAddr+";lr;dsn-flow=udp:203.0.113.5:40001>"))...)))
	f.Add([]byte(rawRequest(reqText("INVITE", "sip:"+selfAddr, "Route: <sip:bob@192.0.2.20:5062>")...)))
	e := fuzzEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		routeAll(e, data)
	})
}

// TestTryingGoesToSource: the 100 Trying for an INVITE goes to the address
// the INVITE came from when its Via asks for rport (RFC 3581), with
// received and rport filled in, before the final response.
func TestTryingGoesToSource(t *testing.T) {
	r := newRing()
	n := startNode(t, r, nodeOpts{})
	r.setDefault(n.addr)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := rawRequest(replaceLine(reqText("INVITE", "sip:nobody@"+testDomain), "Via:",
		"Via: SIP/2.0/UDP 192.0.2.99:5999;branch=z9hG4bK-test1;rport")...)
	dst, _ := net.ResolveUDPAddr("udp4", n.addr)
	if _, err := c.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	var lines []string
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(lines) < 2 {
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v: %v", lines, err)
		}
		m, err := sip.ParseMessage(buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		res := m.(*sip.Response)
		lines = append(lines, res.StartLine())
		if res.StatusCode == 100 {
			v := res.Via()
			port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
			if v.Params.GetOr("received", "") != "127.0.0.1" || v.Params.GetOr("rport", "") != port {
				t.Fatalf("100 Via %s, want received=127.0.0.1;rport=%s", v.Value(), port)
			}
		}
	}
	if !strings.HasPrefix(lines[0], "SIP/2.0 100") || !strings.HasPrefix(lines[1], "SIP/2.0 404") {
		t.Fatalf("got %v, want 100 then 404", lines)
	}
}
