package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

const zoneName = "dsn.example.com."

// upd builds an UPDATE for zoneName from miekg's RFC 2136 helpers.
type upd struct {
	zone    string // default zoneName
	prereq  func(t testing.TB, m *dns.Msg)
	updates func(t testing.TB, m *dns.Msg)
}

func (u upd) msg(t testing.TB) *dns.Msg {
	m := new(dns.Msg)
	zone := u.zone
	if zone == "" {
		zone = zoneName
	}
	m.SetUpdate(zone)
	if u.prereq != nil {
		u.prereq(t, m)
	}
	if u.updates != nil {
		u.updates(t, m)
	}
	return m
}

func insert(rrs ...string) func(testing.TB, *dns.Msg) {
	return func(t testing.TB, m *dns.Msg) { m.Insert(mustRRs(t, rrs...)) }
}

// then chains section builders.
func then(fs ...func(testing.TB, *dns.Msg)) func(testing.TB, *dns.Msg) {
	return func(t testing.TB, m *dns.Msg) {
		for _, f := range fs {
			f(t, m)
		}
	}
}

func removeRRset(rrs ...string) func(testing.TB, *dns.Msg) {
	return func(t testing.TB, m *dns.Msg) { m.RemoveRRset(mustRRs(t, rrs...)) }
}

func removeName(rrs ...string) func(testing.TB, *dns.Msg) {
	return func(t testing.TB, m *dns.Msg) { m.RemoveName(mustRRs(t, rrs...)) }
}

func remove(rrs ...string) func(testing.TB, *dns.Msg) {
	return func(t testing.TB, m *dns.Msg) { m.Remove(mustRRs(t, rrs...)) }
}

// raw appends records to the update section unchanged (for malformed ones).
func raw(rrs ...dns.RR) func(testing.TB, *dns.Msg) {
	return func(_ testing.TB, m *dns.Msg) { m.Ns = append(m.Ns, rrs...) }
}

func rawPrereq(rrs ...dns.RR) func(testing.TB, *dns.Msg) {
	return func(_ testing.TB, m *dns.Msg) { m.Answer = append(m.Answer, rrs...) }
}

func empty(name string, t uint16, class uint16, ttl uint32) dns.RR {
	return &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: class, Ttl: ttl}}
}

func TestUpdate(t *testing.T) {
	const node1A = "node1.dsn.example.com. 300 IN A 192.0.2.1"
	tests := []struct {
		name    string
		u       upd
		rcode   int
		present []string // records (with TTL) that must exist afterwards
		absent  []string // records that must not exist afterwards
		bump    uint32   // expected serial increase
	}{
		// Prerequisites, RFC 2136 section 3.2.
		{name: "prereq RRset exists (value independent) holds",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.RRsetUsed(mustRRs(t, node1A)) }, updates: insert("new.dsn.example.com. 300 IN A 192.0.2.50")},
			rcode: dns.RcodeSuccess, present: []string{"new.dsn.example.com. 300 IN A 192.0.2.50"}, bump: 1},
		{name: "prereq RRset exists (value independent) fails",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.RRsetUsed(mustRRs(t, "node1.dsn.example.com. 300 IN TXT x")) }, updates: insert("new.dsn.example.com. 300 IN A 192.0.2.50")},
			rcode: dns.RcodeNXRrset, absent: []string{"new.dsn.example.com. 300 IN A 192.0.2.50"}},
		{name: "prereq RRset exists (value dependent) holds",
			u: upd{prereq: func(t testing.TB, m *dns.Msg) {
				m.Used(mustRRs(t, "node2.dsn.example.com. 300 IN A 192.0.2.3", "NODE2.dsn.example.com. 300 IN A 192.0.2.2"))
			}, updates: insert("new.dsn.example.com. 300 IN A 192.0.2.50")},
			rcode: dns.RcodeSuccess, present: []string{"new.dsn.example.com. 300 IN A 192.0.2.50"}, bump: 1},
		{name: "prereq RRset exists (value dependent) fails on a subset",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.Used(mustRRs(t, "node2.dsn.example.com. 300 IN A 192.0.2.2")) }, updates: insert("new.dsn.example.com. 300 IN A 192.0.2.50")},
			rcode: dns.RcodeNXRrset, absent: []string{"new.dsn.example.com. 300 IN A 192.0.2.50"}},
		{name: "prereq RRset exists (value dependent) fails on other data",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.Used(mustRRs(t, "node1.dsn.example.com. 300 IN A 192.0.2.9")) }},
			rcode: dns.RcodeNXRrset},
		{name: "prereq RRset does not exist holds",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.RRsetNotUsed(mustRRs(t, "node1.dsn.example.com. 300 IN AAAA ::1")) }, updates: insert("node1.dsn.example.com. 300 IN AAAA 2001:db8::1")},
			rcode: dns.RcodeSuccess, present: []string{"node1.dsn.example.com. 300 IN AAAA 2001:db8::1"}, bump: 1},
		{name: "prereq RRset does not exist fails",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.RRsetNotUsed(mustRRs(t, node1A)) }, updates: insert("node1.dsn.example.com. 300 IN A 192.0.2.60")},
			rcode: dns.RcodeYXRrset, absent: []string{"node1.dsn.example.com. 300 IN A 192.0.2.60"}},
		{name: "prereq name in use holds",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, node1A)) }, updates: insert("node1.dsn.example.com. 300 IN TXT ok")},
			rcode: dns.RcodeSuccess, present: []string{`node1.dsn.example.com. 300 IN TXT "ok"`}, bump: 1},
		{name: "prereq name in use fails",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "nobody.dsn.example.com. 0 IN A 0.0.0.0")) }},
			rcode: dns.RcodeNameError},
		{name: "prereq name in use fails on an empty non-terminal",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "b.ent.dsn.example.com. 0 IN A 0.0.0.0")) }},
			rcode: dns.RcodeNameError},
		{name: "prereq name not in use holds",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameNotUsed(mustRRs(t, "fresh.dsn.example.com. 0 IN A 0.0.0.0")) }, updates: insert("fresh.dsn.example.com. 300 IN A 192.0.2.70")},
			rcode: dns.RcodeSuccess, present: []string{"fresh.dsn.example.com. 300 IN A 192.0.2.70"}, bump: 1},
		{name: "prereq name not in use fails",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameNotUsed(mustRRs(t, node1A)) }, updates: insert("node1.dsn.example.com. 300 IN A 192.0.2.60")},
			rcode: dns.RcodeYXDomain, absent: []string{"node1.dsn.example.com. 300 IN A 192.0.2.60"}},
		{name: "prereq outside the zone is NOTZONE",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "www.example.org. 0 IN A 0.0.0.0")) }},
			rcode: dns.RcodeNotZone},
		{name: "prereq in a more specific zone is NOTZONE",
			u:     upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "x.inner.dsn.example.com. 0 IN A 0.0.0.0")) }},
			rcode: dns.RcodeNotZone},
		{name: "prereq with TTL is FORMERR",
			u:     upd{prereq: rawPrereq(empty("node1.dsn.example.com.", dns.TypeA, dns.ClassANY, 5))},
			rcode: dns.RcodeFormatError},
		{name: "prereq class ANY with RDATA is FORMERR",
			u:     upd{prereq: rawPrereq(&dns.A{Hdr: dns.RR_Header{Name: "node1.dsn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassANY}, A: []byte{192, 0, 2, 1}})},
			rcode: dns.RcodeFormatError},
		{name: "prereq class CH is FORMERR",
			u:     upd{prereq: rawPrereq(empty("node1.dsn.example.com.", dns.TypeA, dns.ClassCHAOS, 0))},
			rcode: dns.RcodeFormatError},
		{name: "prerequisites are checked in order; the first failure wins",
			u: upd{prereq: func(t testing.TB, m *dns.Msg) {
				m.NameNotUsed(mustRRs(t, node1A))
				m.NameUsed(mustRRs(t, "nobody.dsn.example.com. 0 IN A 0.0.0.0"))
			}},
			rcode: dns.RcodeYXDomain},

		// Updates, RFC 2136 section 3.4.
		{name: "add RRs",
			u:     upd{updates: insert("node3.dsn.example.com. 30 IN A 192.0.2.33", "node3.dsn.example.com. 30 IN AAAA 2001:db8::33", "_sip._udp.dsn.example.com. 300 IN SRV 10 50 5060 node3.dsn.example.com.")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"node3.dsn.example.com. 30 IN A 192.0.2.33", "node3.dsn.example.com. 30 IN AAAA 2001:db8::33",
				"_sip._udp.dsn.example.com. 300 IN SRV 10 50 5060 node1.dsn.example.com.", "_sip._udp.dsn.example.com. 300 IN SRV 10 50 5060 node3.dsn.example.com."}},
		{name: "add a duplicate is ignored",
			u:     upd{updates: insert(node1A, "NODE1.DSN.EXAMPLE.COM. 300 IN A 192.0.2.1")},
			rcode: dns.RcodeSuccess, present: []string{node1A}, bump: 0},
		{name: "add with another TTL re-times the RRset",
			u:     upd{updates: insert("node2.dsn.example.com. 60 IN A 192.0.2.2")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"node2.dsn.example.com. 60 IN A 192.0.2.2", "node2.dsn.example.com. 60 IN A 192.0.2.3"}},
		{name: "add ENUM NAPTR wildcard for a prefix",
			u:     upd{zone: "e164.arpa.", updates: insert(`*.7.7.7.1.e164.arpa. 60 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:pbx@dsn.example.com!" .`)},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{`*.7.7.7.1.e164.arpa. 60 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:pbx@dsn.example.com!" .`}},
		{name: "add CNAME where other data exists is ignored",
			u:     upd{updates: insert("node1.dsn.example.com. 300 IN CNAME elsewhere.dsn.example.com.")},
			rcode: dns.RcodeSuccess, present: []string{node1A}, absent: []string{"node1.dsn.example.com. 300 IN CNAME elsewhere.dsn.example.com."}},
		{name: "add data where a CNAME exists is ignored",
			u:     upd{updates: insert("alias.dsn.example.com. 300 IN A 192.0.2.80")},
			rcode: dns.RcodeSuccess, present: []string{"alias.dsn.example.com. 300 IN CNAME node1.dsn.example.com."}, absent: []string{"alias.dsn.example.com. 300 IN A 192.0.2.80"}},
		{name: "add CNAME replaces the CNAME",
			u:     upd{updates: insert("alias.dsn.example.com. 300 IN CNAME node2.dsn.example.com.")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"alias.dsn.example.com. 300 IN CNAME node2.dsn.example.com."}, absent: []string{"alias.dsn.example.com. 300 IN CNAME node1.dsn.example.com."}},
		{name: "add SOA with a higher serial replaces it and sets the serial",
			u:     upd{updates: insert("dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 100 3600 600 86400 60")},
			rcode: dns.RcodeSuccess, bump: 90,
			present: []string{"dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 100 3600 600 86400 60"}},
		{name: "add SOA with a lower serial is ignored",
			u:     upd{updates: insert("dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 5 3600 600 86400 60")},
			rcode: dns.RcodeSuccess, bump: 0,
			present: []string{"dsn.example.com. 300 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 10 3600 600 86400 60"}},
		{name: "add SOA with the same serial replaces it and bumps the serial",
			u:     upd{updates: insert("dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 10 3600 600 86400 60")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 11 3600 600 86400 60"}},
		{name: "add SOA below the apex is ignored",
			u:     upd{updates: insert("node1.dsn.example.com. 300 IN SOA ns2.dsn.example.com. admin.dsn.example.com. 100 3600 600 86400 60")},
			rcode: dns.RcodeSuccess, bump: 0},
		{name: "delete an RRset",
			u:     upd{updates: removeRRset("node2.dsn.example.com. 0 IN A 0.0.0.0")},
			rcode: dns.RcodeSuccess, bump: 1,
			absent: []string{"node2.dsn.example.com. 300 IN A 192.0.2.2", "node2.dsn.example.com. 300 IN A 192.0.2.3"}},
		{name: "delete a missing RRset changes nothing",
			u:     upd{updates: removeRRset("node2.dsn.example.com. 0 IN TXT x")},
			rcode: dns.RcodeSuccess, bump: 0},
		{name: "delete the apex NS RRset is ignored",
			u:     upd{updates: removeRRset("dsn.example.com. 0 IN NS x.")},
			rcode: dns.RcodeSuccess, bump: 0,
			present: []string{"dsn.example.com. 300 IN NS ns1.dsn.example.com.", "dsn.example.com. 300 IN NS ns2.dsn.example.com."}},
		{name: "delete the apex SOA RRset is ignored",
			u:     upd{updates: removeRRset("dsn.example.com. 0 IN SOA . . 0 0 0 0 0")},
			rcode: dns.RcodeSuccess, bump: 0},
		{name: "delete all RRsets of a name",
			u:     upd{updates: then(insert("node1.dsn.example.com. 300 IN TXT t"), removeName("node1.dsn.example.com. 0 IN A 0.0.0.0"))},
			rcode: dns.RcodeSuccess, bump: 1,
			absent: []string{node1A, `node1.dsn.example.com. 300 IN TXT "t"`}},
		{name: "delete all RRsets at the apex keeps SOA and NS",
			u:     upd{updates: removeName("dsn.example.com. 0 IN A 0.0.0.0")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"dsn.example.com. 300 IN NS ns1.dsn.example.com.", "dsn.example.com. 300 IN NS ns2.dsn.example.com."},
			absent:  []string{"dsn.example.com. 300 IN A 192.0.2.10", "dsn.example.com. 300 IN AAAA 2001:db8::10"}},
		{name: "delete one RR",
			u:     upd{updates: remove("node2.dsn.example.com. 300 IN A 192.0.2.2")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"node2.dsn.example.com. 300 IN A 192.0.2.3"}, absent: []string{"node2.dsn.example.com. 300 IN A 192.0.2.2"}},
		{name: "delete one RR that is not there changes nothing",
			u:     upd{updates: remove("node2.dsn.example.com. 300 IN A 192.0.2.99")},
			rcode: dns.RcodeSuccess, bump: 0},
		{name: "delete one of two apex NS works",
			u:     upd{updates: remove("dsn.example.com. 300 IN NS ns2.dsn.example.com.")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"dsn.example.com. 300 IN NS ns1.dsn.example.com."}, absent: []string{"dsn.example.com. 300 IN NS ns2.dsn.example.com."}},
		{name: "delete the last apex NS is ignored",
			u:     upd{updates: remove("dsn.example.com. 300 IN NS ns2.dsn.example.com.", "dsn.example.com. 300 IN NS ns1.dsn.example.com.")},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"dsn.example.com. 300 IN NS ns1.dsn.example.com."}},
		{name: "delete the SOA RR is ignored",
			u:     upd{updates: remove("dsn.example.com. 300 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 10 3600 600 86400 60")},
			rcode: dns.RcodeSuccess, bump: 0},
		{name: "a representative's own records only are deleted",
			u: upd{updates: then(
				insert("_sip._udp.dsn.example.com. 30 IN SRV 10 50 5060 node2.dsn.example.com."),
				remove("_sip._udp.dsn.example.com. 0 IN SRV 10 50 5060 node1.dsn.example.com."))},
			rcode: dns.RcodeSuccess, bump: 1,
			present: []string{"_sip._udp.dsn.example.com. 30 IN SRV 10 50 5060 node2.dsn.example.com."},
			absent:  []string{"_sip._udp.dsn.example.com. 30 IN SRV 10 50 5060 node1.dsn.example.com."}},

		// Section checks and atomicity.
		{name: "update outside the zone is NOTZONE and nothing is applied",
			u:     upd{updates: insert("first.dsn.example.com. 300 IN A 192.0.2.90", "www.example.org. 300 IN A 192.0.2.91")},
			rcode: dns.RcodeNotZone, absent: []string{"first.dsn.example.com. 300 IN A 192.0.2.90"}},
		{name: "update in a more specific zone is NOTZONE",
			u:     upd{updates: insert("y.inner.dsn.example.com. 300 IN A 192.0.2.90")},
			rcode: dns.RcodeNotZone},
		{name: "adding type ANY is FORMERR and nothing is applied",
			u:     upd{updates: then(insert("first.dsn.example.com. 300 IN A 192.0.2.90"), raw(&dns.ANY{Hdr: dns.RR_Header{Name: "x.dsn.example.com.", Rrtype: dns.TypeANY, Class: dns.ClassINET, Ttl: 300}}))},
			rcode: dns.RcodeFormatError, absent: []string{"first.dsn.example.com. 300 IN A 192.0.2.90"}},
		{name: "adding a record without RDATA is FORMERR",
			u:     upd{updates: raw(&dns.A{Hdr: dns.RR_Header{Name: "x.dsn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}})},
			rcode: dns.RcodeFormatError},
		{name: "delete RRset with TTL is FORMERR",
			u:     upd{updates: raw(empty("node1.dsn.example.com.", dns.TypeA, dns.ClassANY, 300))},
			rcode: dns.RcodeFormatError, present: []string{node1A}},
		{name: "delete RRset with RDATA is FORMERR",
			u:     upd{updates: raw(&dns.A{Hdr: dns.RR_Header{Name: "node1.dsn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassANY}, A: []byte{192, 0, 2, 1}})},
			rcode: dns.RcodeFormatError, present: []string{node1A}},
		{name: "delete RRset of type AXFR is FORMERR",
			u:     upd{updates: raw(empty("node1.dsn.example.com.", dns.TypeAXFR, dns.ClassANY, 0))},
			rcode: dns.RcodeFormatError},
		{name: "delete RR with TTL is FORMERR",
			u:     upd{updates: raw(&dns.A{Hdr: dns.RR_Header{Name: "node1.dsn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassNONE, Ttl: 5}, A: []byte{192, 0, 2, 1}})},
			rcode: dns.RcodeFormatError, present: []string{node1A}},
		{name: "delete RR of type ANY is FORMERR",
			u:     upd{updates: raw(empty("node1.dsn.example.com.", dns.TypeANY, dns.ClassNONE, 0))},
			rcode: dns.RcodeFormatError},
		{name: "update class CH is FORMERR",
			u:     upd{updates: raw(&dns.A{Hdr: dns.RR_Header{Name: "node1.dsn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS, Ttl: 5}, A: []byte{192, 0, 2, 1}})},
			rcode: dns.RcodeFormatError},
		{name: "failed prerequisite applies nothing",
			u: upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "nobody.dsn.example.com. 0 IN A 0.0.0.0")) },
				updates: then(insert("first.dsn.example.com. 300 IN A 192.0.2.90"), removeName("node1.dsn.example.com. 0 IN A 0.0.0.0"))},
			rcode: dns.RcodeNameError, present: []string{node1A}, absent: []string{"first.dsn.example.com. 300 IN A 192.0.2.90"}},
		{name: "a prerequisite failure is reported before an update format error",
			u: upd{prereq: func(t testing.TB, m *dns.Msg) { m.NameUsed(mustRRs(t, "nobody.dsn.example.com. 0 IN A 0.0.0.0")) },
				updates: raw(empty("node1.dsn.example.com.", dns.TypeA, dns.ClassANY, 300))},
			rcode: dns.RcodeNameError},
		{name: "zone not served is REFUSED",
			u:     upd{zone: "example.org.", updates: insert("www.example.org. 300 IN A 192.0.2.1")},
			rcode: dns.RcodeRefused},
		{name: "non-apex zone name inside our zone is NOTAUTH",
			u:     upd{zone: "node1.dsn.example.com.", updates: insert("node1.dsn.example.com. 300 IN TXT x")},
			rcode: dns.RcodeNotAuth, absent: []string{`node1.dsn.example.com. 300 IN TXT "x"`}},
		{name: "updates apply in order (add then delete the same RR)",
			u:     upd{updates: then(insert("tmp.dsn.example.com. 300 IN A 192.0.2.95"), remove("tmp.dsn.example.com. 0 IN A 192.0.2.95"))},
			rcode: dns.RcodeSuccess, bump: 1, absent: []string{"tmp.dsn.example.com. 300 IN A 192.0.2.95"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, testConfig())
			m := tc.u.msg(t)
			zone := m.Question[0].Name
			before, _ := h.Store().Serial(zone)
			rt := exchange(t, h, m, signedWith(keySHA256), false)
			r := rt.one(t)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			// miekg refuses to verify any NOTAUTH reply (dns.ErrAuth), so
			// only the others can be checked on the client side.
			if r.Opcode != dns.OpcodeUpdate || r.IsTsig() == nil || (rt.verr[0] != nil && r.Rcode != dns.RcodeNotAuth) {
				t.Errorf("reply opcode %d, signed %v, verification %v; want a signed UPDATE reply", r.Opcode, r.IsTsig() != nil, rt.verr[0])
			}
			assertRecords(t, h.Store(), tc.present, tc.absent)
			after, err := h.Store().Serial(zone)
			if err == nil && after-before != tc.bump {
				t.Errorf("serial %d -> %d, want +%d", before, after, tc.bump)
			}
			st := h.Stats()
			if tc.rcode == dns.RcodeSuccess && st.UpdatesOK != 1 ||
				tc.rcode == dns.RcodeRefused && st.UpdatesRefused != 1 ||
				tc.rcode == dns.RcodeNotAuth && st.UpdatesNotAuth != 1 {
				t.Errorf("stats %+v do not count the %s", st, rcodeName(tc.rcode))
			}
		})
	}
}

// assertRecords checks records (including TTL) by exact look-up.
func assertRecords(t testing.TB, s *Store, present, absent []string) {
	t.Helper()
	for _, want := range present {
		rr := mustRR(t, want)
		found := false
		for _, got := range s.Lookup(rr.Header().Name, rr.Header().Rrtype) {
			if dns.IsDuplicate(got, rr) && got.Header().Ttl == rr.Header().Ttl {
				found = true
			}
		}
		if !found {
			t.Errorf("missing %s; have %v", want, s.Lookup(rr.Header().Name, rr.Header().Rrtype))
		}
	}
	for _, gone := range absent {
		rr := mustRR(t, gone)
		for _, got := range s.Lookup(rr.Header().Name, rr.Header().Rrtype) {
			if dns.IsDuplicate(got, rr) {
				t.Errorf("still present: %s", got)
			}
		}
	}
}

func TestUpdateZoneSection(t *testing.T) {
	h := newHandler(t, testConfig())
	noZone := new(dns.Msg)
	noZone.SetUpdate(zoneName)
	noZone.Question = nil
	twoZones := new(dns.Msg).SetUpdate(zoneName)
	twoZones.Question = append(twoZones.Question, twoZones.Question[0])
	typeA := new(dns.Msg).SetUpdate(zoneName)
	typeA.Question[0].Qtype = dns.TypeA
	classCH := new(dns.Msg).SetUpdate(zoneName)
	classCH.Question[0].Qclass = dns.ClassCHAOS
	checkRcodes(t, h, signedWith(keySHA256), []rcodeCase{
		{"no zone", noZone, dns.RcodeFormatError},
		{"two zones", twoZones, dns.RcodeFormatError},
		{"zone type A", typeA, dns.RcodeFormatError},
		{"zone class CH", classCH, dns.RcodeRefused},
	})
	if st := h.Stats(); st.UpdatesFailed != 3 || st.UpdatesRefused != 1 {
		t.Errorf("stats %+v, want 3 failed and 1 refused", st)
	}
}

func TestUpdateSerial(t *testing.T) {
	h := newHandler(t, testConfig())
	for i, name := range []string{"s1", "s2", "s3"} {
		m := new(dns.Msg).SetUpdate(zoneName)
		m.Insert(mustRRs(t, name+".dsn.example.com. 300 IN A 192.0.2.1"))
		if r := exchange(t, h, m, signedWith(keySHA256), false).one(t); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("update %d: %s", i, rcodeName(r.Rcode))
		}
		if got, _ := h.Store().Serial(zoneName); got != uint32(11+i) {
			t.Fatalf("after update %d serial = %d, want %d", i, got, 11+i)
		}
	}
	// The new serial is served.
	r := exchange(t, h, query(zoneName, dns.TypeSOA), signer{}, false).one(t)
	if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != 13 {
		t.Errorf("served SOA %v, want serial 13", r.Answer)
	}

	// Wrap-around skips 0.
	cfg := testConfig()
	cfg.Zones = []ZoneConfig{{Origin: zoneName, Text: "$ORIGIN dsn.example.com.\n@ 300 IN SOA ns1 h 4294967295 1 1 1 1\n@ 300 IN NS ns1\n"}}
	h = newHandler(t, cfg)
	m := new(dns.Msg).SetUpdate(zoneName)
	m.Insert(mustRRs(t, "x.dsn.example.com. 300 IN A 192.0.2.1"))
	exchange(t, h, m, signedWith(keySHA256), false)
	if got, _ := h.Store().Serial(zoneName); got != 1 {
		t.Errorf("serial after 4294967295 = %d, want 1", got)
	}
}

func TestUpdateThenQuery(t *testing.T) {
	h := newHandler(t, testConfig())
	m := new(dns.Msg).SetUpdate("e164.arpa.")
	m.Insert(mustRRs(t, `4.4.4.4.3.2.1.e164.arpa. 60 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:bob@dsn.example.com!" .`))
	if r := exchange(t, h, m, signedWith(keySHA256), false).one(t); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update: %s", rcodeName(r.Rcode))
	}
	r := exchange(t, h, query("4.4.4.4.3.2.1.e164.arpa.", dns.TypeNAPTR), signer{}, false).one(t)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.NAPTR).Regexp != "!^.*$!sip:bob@dsn.example.com!" {
		t.Errorf("answer %v, want bob's NAPTR", r.Answer)
	}
	// Its ancestor 4.4.4.3.2.1 now exists, so the prefix wildcard no longer
	// covers 5.4.4.4.3.2.1 (RFC 4592 section 4.2).
	r = exchange(t, h, query("5.4.4.4.3.2.1.e164.arpa.", dns.TypeNAPTR), signer{}, false).one(t)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("sibling number: rcode %s, want NXDOMAIN", rcodeName(r.Rcode))
	}
	// Deleting the number makes the wildcard apply again.
	m = new(dns.Msg).SetUpdate("e164.arpa.")
	m.RemoveName(mustRRs(t, "4.4.4.4.3.2.1.e164.arpa. 0 IN A 0.0.0.0"))
	exchange(t, h, m, signedWith(keySHA256), false)
	r = exchange(t, h, query("5.4.4.4.3.2.1.e164.arpa.", dns.TypeNAPTR), signer{}, false).one(t)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("after delete: rcode %s answer %v, want the prefix wildcard", rcodeName(r.Rcode), r.Answer)
	}
}
