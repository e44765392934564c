package dnsserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestAXFR(t *testing.T) {
	h := newHandler(t, testConfig())
	cfgOff := testConfig()
	cfgOff.AllowAXFR = false
	off := newHandler(t, cfgOff)
	for _, tc := range []struct {
		name  string
		h     *Handler
		zone  string
		s     signer
		tcp   bool
		rcode int
	}{
		{"unsigned over TCP", h, zoneName, signer{}, true, dns.RcodeRefused},
		{"signed over UDP", h, zoneName, signedWith(keySHA256), false, dns.RcodeRefused},
		{"transfers disabled", off, zoneName, signedWith(keySHA256), true, dns.RcodeRefused},
		{"zone not served", h, "example.org.", signedWith(keySHA256), true, dns.RcodeRefused},
		{"not a zone apex", h, "node1.dsn.example.com.", signedWith(keySHA256), true, dns.RcodeNotAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, tc.h, query(tc.zone, dns.TypeAXFR), tc.s, tc.tcp).one(t)
			if r.Rcode != tc.rcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d records, want %s and none", rcodeName(r.Rcode), len(r.Answer), rcodeName(tc.rcode))
			}
			if (tc.s.key != nil) != (r.IsTsig() != nil) {
				t.Errorf("reply signed = %v, request signed = %v", r.IsTsig() != nil, tc.s.key != nil)
			}
		})
	}
	if st := h.Stats(); st.Transfers != 0 {
		t.Errorf("refused transfers counted as served: %+v", st)
	}

	rt := exchange(t, h, query(zoneName, dns.TypeAXFR), signedWith(keySHA256), true)
	records := transferred(t, rt)
	want, _ := h.Store().Records(zoneName)
	want = append(want, want[0])
	if !sameStrings(rrStringsInOrder(records), rrStringsInOrder(want)) {
		t.Errorf("transfer:\n got %q\nwant %q", rrStringsInOrder(records), rrStringsInOrder(want))
	}
	if st := h.Stats(); st.Transfers != 1 {
		t.Errorf("stats %+v, want one transfer", st)
	}
}

func TestAXFRManyEnvelopes(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "host%04d 300 IN A 198.51.%d.%d\n", i, i/256, i%256)
	}
	cfg := testConfig()
	cfg.Zones[0].Text += b.String()
	h := newHandler(t, cfg)
	rt := exchange(t, h, query(zoneName, dns.TypeAXFR), signedWith(keySHA512), true)
	if len(rt.replies) < 2 {
		t.Fatalf("%d envelopes, want several", len(rt.replies))
	}
	records := transferred(t, rt)
	n, _ := h.Store().Records(zoneName)
	if len(records) != len(n)+1 {
		t.Errorf("%d records transferred, want %d", len(records), len(n)+1)
	}
}

// transferred checks the envelopes of a transfer (all NOERROR, AA, signed
// and verified in a MAC chain, SOA first and last) and returns the records.
func transferred(t *testing.T, rt roundTrip) []dns.RR {
	t.Helper()
	var all []dns.RR
	for i, r := range rt.replies {
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			t.Fatalf("envelope %d: rcode %s AA %v", i, rcodeName(r.Rcode), r.Authoritative)
		}
		if r.IsTsig() == nil || rt.verr[i] != nil {
			t.Fatalf("envelope %d: TSIG %v, verification %v", i, r.IsTsig(), rt.verr[i])
		}
		all = append(all, r.Answer...)
	}
	if len(all) < 2 || all[0].Header().Rrtype != dns.TypeSOA || all[len(all)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("transfer does not start and end with the SOA: %v", all)
	}
	return all
}

func rrStringsInOrder(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}
