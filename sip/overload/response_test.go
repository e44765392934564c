package overload

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

var testSrc = netip.MustParseAddrPort("192.0.2.7:40000")

// parseResponse parses b with sipgo, as a client would.
func parseResponse(t *testing.T, b []byte) *sip.Response {
	t.Helper()
	m, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatalf("sipgo cannot parse %q: %v", b, err)
	}
	res, ok := m.(*sip.Response)
	if !ok {
		t.Fatalf("not a response: %q", b)
	}
	return res
}

func TestAppendResponse(t *testing.T) {
	req := invite("z9hG4bKr1")
	h := head(t, req)
	out, to := appendResponse(nil, req, &h, 503, "Service Unavailable", 5, testSrc)
	res := parseResponse(t, out)
	if res.StatusCode != 503 || res.Reason != "Service Unavailable" {
		t.Fatalf("status %d %q", res.StatusCode, res.Reason)
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
		t.Fatalf("Retry-After %v", ra)
	}
	if cl := res.ContentLength(); cl == nil || *cl != 0 {
		t.Fatalf("Content-Length %v", cl)
	}
	if res.CallID().Value() != "call-z9hG4bKr1" || res.CSeq().Value() != "1 INVITE" || res.From().Params.GetOr("tag", "") != "a1" {
		t.Fatalf("Call-ID/CSeq/From not copied: %s", out)
	}
	tag, _ := res.To().Params.Get("tag")
	if !strings.HasPrefix(tag, TagPrefix) || len(tag) != len(TagPrefix)+16 {
		t.Fatalf("To tag %q", tag)
	}
	via := res.Via()
	if b, _ := via.Params.Get("branch"); b != "z9hG4bKr1" {
		t.Fatalf("branch %q", b)
	}
	if p, _ := via.Params.Get("rport"); p != "40000" {
		t.Fatalf("rport %q: %s", p, out)
	}
	if r, _ := via.Params.Get("received"); r != "192.0.2.7" {
		t.Fatalf("received %q", r)
	}
	if to != testSrc {
		t.Fatalf("sent to %v, want the source (rport)", to)
	}
	// A retransmission gets the same answer (and tag).
	again, _ := appendResponse(nil, req, &h, 503, "Service Unavailable", 5, testSrc)
	if string(again) != string(out) {
		t.Fatalf("retransmission answered differently:\n%s\n%s", out, again)
	}
	// A different request gets a different tag.
	req2 := invite("z9hG4bKr2")
	h2 := head(t, req2)
	out2, _ := appendResponse(nil, req2, &h2, 503, "Service Unavailable", 5, testSrc)
	if tag2, _ := parseResponse(t, out2).To().Params.Get("tag"); tag2 == tag {
		t.Fatalf("two requests, one tag %q", tag)
	}
}

func TestAppendResponseKeepsExistingTagAndVias(t *testing.T) {
	req := msg("",
		"SUBSCRIBE sip:b@h SIP/2.0",
		"v: SIP/2.0/UDP p1:5062;branch=z9hG4bKtop",
		"Via: SIP/2.0/UDP p2;branch=z9hG4bKlow;received=10.0.0.1",
		"f: <sip:a@h>;tag=1",
		"t: <sip:b@h>;tag=keep",
		"i: cid",
		"CSeq: 9 SUBSCRIBE",
		"Contact: <sip:a@p2>",
		"Event: presence")
	h := head(t, req)
	out, to := appendResponse(nil, req, &h, 503, "Service Unavailable", 0, testSrc)
	s := string(out)
	for _, want := range []string{"v: SIP/2.0/UDP p1:5062;branch=z9hG4bKtop\r\n", "Via: SIP/2.0/UDP p2;branch=z9hG4bKlow;received=10.0.0.1\r\n",
		"t: <sip:b@h>;tag=keep\r\n", "f: <sip:a@h>;tag=1\r\n", "i: cid\r\n", "CSeq: 9 SUBSCRIBE\r\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	for _, not := range []string{"Contact", "Event", "Retry-After"} {
		if strings.Contains(s, not) {
			t.Errorf("%s copied:\n%s", not, s)
		}
	}
	if strings.Index(s, "p1:5062") > strings.Index(s, "p2;") {
		t.Errorf("Via order changed:\n%s", s)
	}
	// No rport: to the source address, at the sent-by port.
	if want := netip.MustParseAddrPort("192.0.2.7:5062"); to != want {
		t.Errorf("sent to %v, want %v", to, want)
	}
	parseResponse(t, out)
}

func TestSentByPort(t *testing.T) {
	for in, want := range map[string]int{
		"SIP/2.0/UDP h:5070;branch=x":         5070,
		"SIP/2.0/UDP h;branch=x":              5060,
		"SIP / 2.0 / UDP  h:5071 ;branch=x":   5071,
		"SIP/2.0/UDP [2001:db8::1]:5072;x":    5072,
		"SIP/2.0/UDP [2001:db8::1];x":         5060,
		"SIP/2.0/UDP 2001:db8::1":             5060,
		"SIP/2.0/UDP h:99999":                 5060,
		"SIP/2.0/UDP h:abc":                   5060,
		"":                                    5060,
		"SIP/2.0/UDP h:5073;rport=1;branch=x": 5073,
	} {
		if got := sentByPort([]byte(in)); got != want {
			t.Errorf("sentByPort(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestAppendTopViaRportVariants(t *testing.T) {
	for _, tt := range []struct{ via, want string }{
		{"SIP/2.0/UDP h;rport;branch=x", "SIP/2.0/UDP h;rport=40000;branch=x;received=192.0.2.7"},
		{"SIP/2.0/UDP h;branch=x;rport", "SIP/2.0/UDP h;branch=x;rport=40000;received=192.0.2.7"},
		{"SIP/2.0/UDP h;branch=x; RPORT ", "SIP/2.0/UDP h;branch=x; RPORT=40000 ;received=192.0.2.7"},
		{"SIP/2.0/UDP h;rport=5;branch=x", "SIP/2.0/UDP h;rport=5;branch=x"},
		{"SIP/2.0/UDP h;rportx;branch=x", "SIP/2.0/UDP h;rportx;branch=x"},
		{"SIP/2.0/UDP h;rport;branch=x, SIP/2.0/UDP g;rport", "SIP/2.0/UDP h;rport=40000;branch=x;received=192.0.2.7, SIP/2.0/UDP g;rport"},
	} {
		req := msg("", "OPTIONS sip:h SIP/2.0", "Via: "+tt.via)
		h := head(t, req)
		out, _ := appendResponse(nil, req, &h, 503, "Service Unavailable", 0, testSrc)
		if !strings.Contains(string(out), "\r\nVia: "+tt.want+"\r\n") {
			t.Errorf("Via %q: got\n%s\nwant Via: %s", tt.via, out, tt.want)
		}
	}
}
