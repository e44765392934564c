package dnsserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// benchHandler serves the test zones plus n provisioned ENUM numbers.
func benchHandler(b *testing.B, n int) *Handler {
	var sb strings.Builder
	sb.WriteString(enumZone)
	for i := range n {
		fmt.Fprintf(&sb, "%s.6.3.2.1 60 IN NAPTR 10 100 \"u\" \"E2U+sip\" \"!^.*$!sip:u%d@dsn.example.com!\" .\n", reverseDigits(fmt.Sprintf("%06d", i)), i)
	}
	cfg := testConfig()
	cfg.Zones[1].Text = sb.String()
	return newHandler(b, cfg)
}

func reverseDigits(s string) string {
	parts := make([]string, len(s))
	for i := range s {
		parts[len(s)-1-i] = s[i : i+1]
	}
	return strings.Join(parts, ".")
}

func BenchmarkHandleQuery(b *testing.B) {
	h := benchHandler(b, 10000)
	for _, bc := range []struct{ name, qname string }{
		{"exact", reverseDigits("004242") + ".6.3.2.1.e164.arpa."},
		{"wildcard", "9.9.9.4.3.2.1.e164.arpa."},
		{"nxdomain", "9.9.9.9.e164.arpa."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := query(bc.qname, dns.TypeNAPTR)
			b.ReportAllocs()
			for b.Loop() {
				if r := h.Handle(Request{Msg: m, TCP: true}); len(r) != 1 {
					b.Fatal("no reply")
				}
			}
		})
	}
}

// BenchmarkHandleUpdate measures the UPDATE core (TSIG already verified):
// a representative replacing its A record in a zone of 10k names.
func BenchmarkHandleUpdate(b *testing.B) {
	h := benchHandler(b, 10000)
	m := new(dns.Msg).SetUpdate(zoneName)
	m.RemoveRRset(mustRRs(b, "rep.dsn.example.com. 0 IN A 0.0.0.0"))
	m.Insert(mustRRs(b, "rep.dsn.example.com. 30 IN A 192.0.2.5"))
	m.SetTsig(keySHA256.Name, dns.HmacSHA256, 300, 0)
	b.ReportAllocs()
	for b.Loop() {
		if r := h.Handle(Request{Msg: m, TCP: true}); r[0].Rcode != dns.RcodeSuccess {
			b.Fatal(rcodeName(r[0].Rcode))
		}
	}
}

// BenchmarkServerUDPQuery is one query round trip over loopback UDP.
func BenchmarkServerUDPQuery(b *testing.B) {
	s, err := Start(testConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := client("udp", nil)
	conn, err := c.Dial(s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := query("_sip._udp.dsn.example.com.", dns.TypeSRV)
	b.ReportAllocs()
	for b.Loop() {
		if r, _, err := c.ExchangeWithConn(m, conn); err != nil || len(r.Answer) != 1 {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkServerSignedUpdate is one signed UPDATE round trip over
// loopback UDP, signing and verification included. Each exchange uses a new
// socket: a reused dns.Conn chains the previous reply's MAC into the next
// request's signature, which is only right inside a zone transfer.
func BenchmarkServerSignedUpdate(b *testing.B) {
	s, err := Start(testConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := client("udp", &keySHA256)
	b.ReportAllocs()
	for b.Loop() {
		m := signedUpdate(b, keySHA256, zoneName, "rep.dsn.example.com. 30 IN A 192.0.2.5")
		if r, _, err := c.Exchange(m, s.Addr()); err != nil || r.Rcode != dns.RcodeSuccess {
			b.Fatal(r, err)
		}
	}
}
