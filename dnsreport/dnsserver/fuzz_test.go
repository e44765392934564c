package dnsserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fuzzSeeds are packed requests covering every UPDATE form and a few
// queries; testdata/fuzz/FuzzHandleUpdate holds them and more.
func fuzzSeeds(t testing.TB) [][]byte {
	var msgs []*dns.Msg
	add := func(m *dns.Msg) { msgs = append(msgs, m) }
	u := func(zone string) *dns.Msg { return new(dns.Msg).SetUpdate(zone) }

	m := u(zoneName)
	m.Insert(mustRRs(t, "rep.dsn.example.com. 30 IN A 192.0.2.5", "rep.dsn.example.com. 30 IN AAAA 2001:db8::5",
		"_sip._udp.dsn.example.com. 30 IN SRV 10 50 5060 rep.dsn.example.com.", "dsn.example.com. 30 IN A 192.0.2.5"))
	add(m)
	m = u(zoneName)
	m.RRsetUsed(mustRRs(t, "node1.dsn.example.com. 0 IN A 0.0.0.0"))
	m.Used(mustRRs(t, "node2.dsn.example.com. 0 IN A 192.0.2.2"))
	m.RRsetNotUsed(mustRRs(t, "node1.dsn.example.com. 0 IN AAAA ::"))
	m.NameUsed(mustRRs(t, "node1.dsn.example.com. 0 IN A 0.0.0.0"))
	m.NameNotUsed(mustRRs(t, "free.dsn.example.com. 0 IN A 0.0.0.0"))
	m.Remove(mustRRs(t, "_sip._udp.dsn.example.com. 0 IN SRV 10 50 5060 node1.dsn.example.com."))
	add(m)
	m = u(zoneName)
	m.RemoveRRset(mustRRs(t, "dsn.example.com. 0 IN NS .", "node2.dsn.example.com. 0 IN A 0.0.0.0"))
	m.RemoveName(mustRRs(t, "dsn.example.com. 0 IN A 0.0.0.0", "alias.dsn.example.com. 0 IN A 0.0.0.0"))
	m.Remove(mustRRs(t, "dsn.example.com. 0 IN NS ns1.dsn.example.com.", "dsn.example.com. 0 IN NS ns2.dsn.example.com."))
	add(m)
	m = u(zoneName)
	m.Insert(mustRRs(t, "dsn.example.com. 60 IN SOA ns1.dsn.example.com. h.dsn.example.com. 99 1 1 1 1",
		"node1.dsn.example.com. 60 IN CNAME x.", "alias.dsn.example.com. 60 IN CNAME node2.dsn.example.com.",
		"alias.dsn.example.com. 60 IN TXT no", "*.w.dsn.example.com. 60 IN MX 10 mail.dsn.example.com."))
	add(m)
	m = u("e164.arpa.")
	m.Insert(mustRRs(t, `*.9.8.7.1.e164.arpa. 60 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:x@dsn.example.com!" .`))
	m.SetEdns0(1232, false)
	add(m)
	m = u("example.org.")
	m.Insert(mustRRs(t, "www.example.org. 30 IN A 192.0.2.1"))
	add(m)
	m = u(zoneName)
	m.Ns = append(m.Ns, empty("x.dsn.example.com.", dns.TypeAXFR, dns.ClassANY, 0), empty("x.dsn.example.com.", dns.TypeA, dns.ClassCHAOS, 0))
	add(m)
	add(query("9.9.4.3.2.1.e164.arpa.", dns.TypeNAPTR))
	add(query("alias.dsn.example.com.", dns.TypeANY))
	add(query("dsn.example.com.", dns.TypeAXFR))

	var out [][]byte
	for _, m := range msgs {
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzHandleUpdate feeds arbitrary bytes through decode and Handle. With
// signed set the decoded message is treated as validly signed, so the fuzzer
// reaches the UPDATE logic behind the TSIG check. Handle must never panic,
// every reply must encode, and the zones must keep their invariants.
func FuzzHandleUpdate(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	cfg := testConfig()
	cfg.Zones = cfg.Zones[:2]
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil {
			return
		}
		h := newHandler(t, cfg)
		var status error
		if signed {
			extra := m.Extra[:0]
			for _, rr := range m.Extra {
				if rr.Header().Rrtype != dns.TypeTSIG {
					extra = append(extra, rr)
				}
			}
			m.Extra = extra
			m.SetTsig(keySHA256.Name, dns.HmacSHA256, 300, time.Now().Unix())
		} else if m.IsTsig() != nil {
			status = dns.TsigVerifyWithProvider(append([]byte(nil), data...), h.TsigProvider(), "", false)
		}
		tcp := len(data)%2 == 0
		prev := ""
		for i, r := range h.Handle(Request{Msg: m, TSIGStatus: status, TCP: tcp}) {
			var err error
			if r.IsTsig() != nil {
				_, prev, err = dns.TsigGenerateWithProvider(r, h.TsigProvider(), prev, i > 0)
			} else {
				_, err = r.Pack()
			}
			if err != nil {
				t.Fatalf("reply %d does not encode: %v\n%v", i, err, r)
			}
		}
		for _, origin := range h.Store().Origins() {
			h.Store().mu.RLock()
			checkZone(t, h.Store().zones[origin])
			h.Store().mu.RUnlock()
		}
	})
}

// checkZone asserts the invariants every update must preserve.
func checkZone(t *testing.T, z *Zone) {
	t.Helper()
	if soa := z.rrset(z.origin, dns.TypeSOA); len(soa) != 1 {
		t.Fatalf("zone %s has %d SOAs", z.origin, len(soa))
	}
	if len(z.rrset(z.origin, dns.TypeNS)) == 0 {
		t.Fatalf("zone %s lost its apex NS", z.origin)
	}
	want := newZone(z.origin)
	buf := make([]byte, dns.MaxMsgSize)
	for name, sets := range z.names {
		if len(sets) == 0 {
			t.Fatalf("empty node %s kept", name)
		}
		if len(sets[dns.TypeCNAME]) > 1 || len(sets[dns.TypeCNAME]) == 1 && len(sets) > 1 {
			t.Fatalf("CNAME conflict at %s: %v", name, sets)
		}
		for typ, rrs := range sets {
			if len(rrs) == 0 {
				t.Fatalf("empty RRset %s %s kept", name, dns.Type(typ))
			}
			for i, rr := range rrs {
				if rr.Header().Name != name || rr.Header().Rrtype != typ || rr.Header().Class != dns.ClassINET {
					t.Fatalf("record %v filed under %s %s", rr, name, dns.Type(typ))
				}
				if rr.Header().Ttl != rrs[0].Header().Ttl {
					t.Fatalf("RRset %s %s has mixed TTLs", name, dns.Type(typ))
				}
				if indexRR(rrs[:i], rr) >= 0 {
					t.Fatalf("duplicate record %v", rr)
				}
				if _, err := dns.PackRR(rr, buf, 0, nil, false); err != nil {
					t.Fatalf("record %v does not encode: %v", rr, err)
				}
				want.add(rr)
			}
		}
	}
	if len(want.exist) != len(z.exist) {
		t.Fatalf("existence index has %d names, want %d", len(z.exist), len(want.exist))
	}
	for n, c := range want.exist {
		if z.exist[n] != c {
			t.Fatalf("existence count of %s = %d, want %d", n, z.exist[n], c)
		}
	}
}
