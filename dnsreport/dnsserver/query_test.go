package dnsserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestQuery(t *testing.T) {
	const (
		dsnSOA  = "dsn.example.com. 60 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 10 3600 600 86400 60"
		enumSOA = "e164.arpa. 120 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 1 3600 600 86400 120"
	)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		noAA   bool
		answer []string
		ns     []string
		extra  []string
	}{
		{name: "apex A", qname: "dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"dsn.example.com. 300 IN A 192.0.2.10"}},
		{name: "apex AAAA", qname: "dsn.example.com.", qtype: dns.TypeAAAA,
			answer: []string{"dsn.example.com. 300 IN AAAA 2001:db8::10"}},
		{name: "A RRset of two", qname: "node2.dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"node2.dsn.example.com. 300 IN A 192.0.2.2", "node2.dsn.example.com. 300 IN A 192.0.2.3"}},
		{name: "SRV with target address in additional", qname: "_sip._udp.dsn.example.com.", qtype: dns.TypeSRV,
			answer: []string{"_sip._udp.dsn.example.com. 300 IN SRV 10 50 5060 node1.dsn.example.com."},
			extra:  []string{"node1.dsn.example.com. 300 IN A 192.0.2.1"}},
		{name: "NAPTR at apex", qname: "dsn.example.com.", qtype: dns.TypeNAPTR,
			answer: []string{`dsn.example.com. 300 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.dsn.example.com.`}},
		{name: "TXT", qname: "txt.dsn.example.com.", qtype: dns.TypeTXT,
			answer: []string{`txt.dsn.example.com. 300 IN TXT "hello" "world"`}},
		{name: "NS with glue", qname: "dsn.example.com.", qtype: dns.TypeNS,
			answer: []string{"dsn.example.com. 300 IN NS ns1.dsn.example.com.", "dsn.example.com. 300 IN NS ns2.dsn.example.com."},
			extra:  []string{"ns1.dsn.example.com. 300 IN A 192.0.2.53", "ns2.dsn.example.com. 300 IN A 192.0.2.54"}},
		{name: "SOA", qname: "dsn.example.com.", qtype: dns.TypeSOA,
			answer: []string{"dsn.example.com. 300 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 10 3600 600 86400 60"}},
		{name: "CNAME followed in zone", qname: "alias.dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"alias.dsn.example.com. 300 IN CNAME node1.dsn.example.com.", "node1.dsn.example.com. 300 IN A 192.0.2.1"}},
		{name: "CNAME asked for", qname: "alias.dsn.example.com.", qtype: dns.TypeCNAME,
			answer: []string{"alias.dsn.example.com. 300 IN CNAME node1.dsn.example.com."}},
		{name: "CNAME to a target with no such type", qname: "alias.dsn.example.com.", qtype: dns.TypeTXT,
			answer: []string{"alias.dsn.example.com. 300 IN CNAME node1.dsn.example.com."}, ns: []string{dsnSOA}},
		{name: "CNAME out of our zones ends the chain", qname: "ext.dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"ext.dsn.example.com. 300 IN CNAME sip.other.example."}},
		{name: "CNAME loop is bounded", qname: "loop1.dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"loop1.dsn.example.com. 300 IN CNAME loop2.dsn.example.com.", "loop2.dsn.example.com. 300 IN CNAME loop1.dsn.example.com."}},
		{name: "PTR in a second zone", qname: "1.2.0.192.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.2.0.192.in-addr.arpa. 300 IN PTR node1.dsn.example.com."}},
		{name: "most specific zone wins", qname: "x.inner.dsn.example.com.", qtype: dns.TypeA,
			answer: []string{"x.inner.dsn.example.com. 300 IN A 192.0.2.200"}},
		{name: "names are case-insensitive; the answer keeps the question's spelling", qname: "NODE1.Dsn.Example.COM.", qtype: dns.TypeA,
			answer: []string{"NODE1.Dsn.Example.COM. 300 IN A 192.0.2.1"}},
		{name: "ANY returns every RRset", qname: "node1.dsn.example.com.", qtype: dns.TypeANY,
			answer: []string{"node1.dsn.example.com. 300 IN A 192.0.2.1"}},
		{name: "NXDOMAIN with SOA at the negative TTL", qname: "nobody.dsn.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{dsnSOA}},
		{name: "NODATA with SOA", qname: "node1.dsn.example.com.", qtype: dns.TypeTXT, ns: []string{dsnSOA}},
		{name: "SOA below the apex is NODATA", qname: "node1.dsn.example.com.", qtype: dns.TypeSOA, ns: []string{dsnSOA}},
		{name: "empty non-terminal is NODATA, not NXDOMAIN", qname: "b.ent.dsn.example.com.", qtype: dns.TypeA, ns: []string{dsnSOA}},
		{name: "below an empty non-terminal is NXDOMAIN", qname: "c.b.ent.dsn.example.com.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{dsnSOA}},
		{name: "outside all zones is REFUSED", qname: "www.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},
		{name: "parent of a zone is REFUSED", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},

		// Wildcards, RFC 4592.
		{name: "wildcard synthesises the asked name", qname: "foo.wild.dsn.example.com.", qtype: dns.TypeTXT,
			answer: []string{`foo.wild.dsn.example.com. 300 IN TXT "wild"`}},
		{name: "wildcard covers several labels", qname: "a.b.wild.dsn.example.com.", qtype: dns.TypeTXT,
			answer: []string{`a.b.wild.dsn.example.com. 300 IN TXT "wild"`}},
		{name: "wildcard with another type is NODATA", qname: "foo.wild.dsn.example.com.", qtype: dns.TypeA, ns: []string{dsnSOA}},
		{name: "existing name is not synthesised", qname: "exists.wild.dsn.example.com.", qtype: dns.TypeTXT, ns: []string{dsnSOA}},
		{name: "the wildcard owner answers for itself", qname: "*.wild.dsn.example.com.", qtype: dns.TypeTXT,
			answer: []string{`*.wild.dsn.example.com. 300 IN TXT "wild"`}},
		{name: "ENUM number under a prefix wildcard", qname: "9.9.9.4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR,
			answer: []string{`9.9.9.4.3.2.1.e164.arpa. 300 IN NAPTR 10 100 "u" "E2U+sip" "!^\\+1234(.*)$!sip:\\1@dsn.example.com!" .`}},
		{name: "ENUM: the more specific prefix wins", qname: "9.5.4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR,
			answer: []string{`9.5.4.3.2.1.e164.arpa. 300 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:special@dsn.example.com!" .`}},
		{name: "ENUM: an exact number wins over the wildcard", qname: "8.7.6.4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR,
			answer: []string{`8.7.6.4.3.2.1.e164.arpa. 300 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:alice@dsn.example.com!" .`}},
		{name: "ENUM: the prefix itself is an empty non-terminal", qname: "4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR, ns: []string{enumSOA}},
		{name: "ENUM: an exact number's ancestor blocks the wildcard (RFC 4592 4.2)", qname: "6.4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR, ns: []string{enumSOA}},
		{name: "ENUM: below that ancestor there is no wildcard", qname: "9.6.4.3.2.1.e164.arpa.", qtype: dns.TypeNAPTR,
			rcode: dns.RcodeNameError, ns: []string{enumSOA}},
		{name: "ENUM: outside every prefix is NXDOMAIN", qname: "9.9.e164.arpa.", qtype: dns.TypeNAPTR,
			rcode: dns.RcodeNameError, ns: []string{enumSOA}},

		// Delegation.
		{name: "below a cut is a referral", qname: "host.sub.dsn.example.com.", qtype: dns.TypeA, noAA: true,
			ns:    []string{"sub.dsn.example.com. 300 IN NS ns.sub.dsn.example.com."},
			extra: []string{"ns.sub.dsn.example.com. 300 IN A 192.0.2.99"}},
		{name: "the cut itself is a referral", qname: "sub.dsn.example.com.", qtype: dns.TypeA, noAA: true,
			ns:    []string{"sub.dsn.example.com. 300 IN NS ns.sub.dsn.example.com."},
			extra: []string{"ns.sub.dsn.example.com. 300 IN A 192.0.2.99"}},
		{name: "DS at the cut is answered by the parent", qname: "sub.dsn.example.com.", qtype: dns.TypeDS, ns: []string{dsnSOA}},
	}
	h := newHandler(t, testConfig())
	ran := uint64(0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ran++
			r := exchange(t, h, query(tc.qname, tc.qtype), signer{}, true).one(t)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			if r.Authoritative == tc.noAA {
				t.Errorf("AA = %v, want %v", r.Authoritative, !tc.noAA)
			}
			for _, sec := range []struct {
				name      string
				got, want []string
			}{
				{"answer", rrStrings(r.Answer), normalize(t, tc.answer)},
				{"authority", rrStrings(r.Ns), normalize(t, tc.ns)},
				{"additional", rrStrings(r.Extra), normalize(t, tc.extra)},
			} {
				if !sameStrings(sec.got, sec.want) {
					t.Errorf("%s:\n got %q\nwant %q", sec.name, sec.got, sec.want)
				}
			}
			if r.IsTsig() != nil {
				t.Error("reply to an unsigned query is signed")
			}
		})
	}
	if got := h.Stats().Queries; got != ran {
		t.Errorf("Stats().Queries = %d, want %d", got, ran)
	}
}

func TestQueryMalformed(t *testing.T) {
	h := newHandler(t, testConfig())
	twoQuestions := query("node1.dsn.example.com.", dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	noQuestion := query("node1.dsn.example.com.", dns.TypeA)
	noQuestion.Question = nil
	chaos := query("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	notify := query("dsn.example.com.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	badVersion := query("node1.dsn.example.com.", dns.TypeA)
	badVersion.SetEdns0(1232, false)
	badVersion.IsEdns0().SetVersion(1)

	checkRcodes(t, h, signer{}, []rcodeCase{
		{"two questions", twoQuestions, dns.RcodeFormatError},
		{"no question", noQuestion, dns.RcodeFormatError},
		{"class CH", chaos, dns.RcodeRefused},
		{"NOTIFY", notify, dns.RcodeNotImplemented},
		{"IXFR", query("dsn.example.com.", dns.TypeIXFR), dns.RcodeNotImplemented},
		{"MAILB", query("dsn.example.com.", dns.TypeMAILB), dns.RcodeNotImplemented},
		{"qtype OPT", query("dsn.example.com.", dns.TypeOPT), dns.RcodeFormatError},
		{"EDNS version 1", badVersion, dns.RcodeBadVers},
	})

	response := query("node1.dsn.example.com.", dns.TypeA)
	response.Response = true
	if got := h.Handle(Request{Msg: response}); got != nil {
		t.Errorf("a response was answered: %v", got)
	}
	if got := h.Handle(Request{}); got != nil {
		t.Errorf("a nil message was answered: %v", got)
	}
}

func TestQueryEDNSAndTruncation(t *testing.T) {
	var big strings.Builder
	for i := range 40 {
		fmt.Fprintf(&big, "big 300 IN TXT \"record number %02d with some padding to make it long\"\n", i)
	}
	cfg := testConfig()
	cfg.Zones[0].Text += big.String()
	h := newHandler(t, cfg)

	plain := exchange(t, h, query("big.dsn.example.com.", dns.TypeTXT), signer{}, false).one(t)
	if !plain.Truncated {
		t.Error("large UDP reply without EDNS is not truncated")
	}
	overTCP := exchange(t, h, query("big.dsn.example.com.", dns.TypeTXT), signer{}, true).one(t)
	if overTCP.Truncated || len(overTCP.Answer) != 40 {
		t.Errorf("TCP reply: truncated=%v, %d answers; want all 40", overTCP.Truncated, len(overTCP.Answer))
	}
	e := query("big.dsn.example.com.", dns.TypeTXT)
	e.SetEdns0(4096, false)
	withEDNS := exchange(t, h, e, signer{}, false).one(t)
	if withEDNS.Truncated || len(withEDNS.Answer) != 40 {
		t.Errorf("EDNS 4096 reply: truncated=%v, %d answers; want all 40", withEDNS.Truncated, len(withEDNS.Answer))
	}
	if opt := withEDNS.IsEdns0(); opt == nil || opt.UDPSize() != ednsSize {
		t.Errorf("reply OPT = %v, want UDP size %d", opt, ednsSize)
	}
	signed := exchange(t, h, query("big.dsn.example.com.", dns.TypeTXT), signedWith(keySHA256), false)
	if r := signed.one(t); !r.Truncated || r.IsTsig() == nil || signed.verr[0] != nil {
		t.Errorf("signed large UDP reply: truncated=%v tsig=%v verify=%v; want truncated and signed", r.Truncated, r.IsTsig() != nil, signed.verr[0])
	}
}
