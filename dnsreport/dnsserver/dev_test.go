package dnsserver

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/miekg/dns"
)

func TestDevZone(t *testing.T) {
	for _, tc := range []struct {
		name, origin, ns string
		addr             netip.Addr
		glue             string
	}{
		{"glue A inside the zone", "dsn.example.com", "ns.dsn.example.com", netip.MustParseAddr("127.0.0.1"), "ns.dsn.example.com.\t30\tIN\tA\t127.0.0.1"},
		{"glue AAAA", "dsn.example.com.", "ns.dsn.example.com.", netip.MustParseAddr("::1"), "ns.dsn.example.com.\t30\tIN\tAAAA\t::1"},
		{"no glue outside the zone", "e164.arpa.", "ns.dsn.example.com.", netip.MustParseAddr("127.0.0.1"), ""},
		{"no glue without an address", "dsn.example.com.", "ns.dsn.example.com.", netip.Addr{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseZoneString(tc.origin, DevZone(tc.origin, tc.ns, tc.addr, 30*time.Second))
			if err != nil {
				t.Fatalf("DevZone does not parse: %v", err)
			}
			recs := z.Records()
			soa := recs[0].(*dns.SOA)
			if soa.Serial != 1 || soa.Minttl != 30 || soa.Ns != dns.Fqdn(tc.ns) {
				t.Errorf("SOA %v", soa)
			}
			var glue []string
			for _, rr := range recs {
				if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
					glue = append(glue, rr.String())
				}
			}
			if got := strings.Join(glue, ","); got != tc.glue {
				t.Errorf("glue %q, want %q", got, tc.glue)
			}
		})
	}
}

func TestDevConfig(t *testing.T) {
	key, err := dnsreport.GenerateKey("dev-key", "", bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DevConfig("dsn.example.com", "", key)
	h, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("New(DevConfig): %v", err)
	}
	if got := h.Store().Origins(); strings.Join(got, " ") != "dsn.example.com. e164.arpa." {
		t.Errorf("origins %v", got)
	}
	m := new(dns.Msg).SetUpdate(DefaultENUMSuffix)
	m.Insert(mustRRs(t, `*.4.3.2.1.e164.arpa. 30 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:x@dsn.example.com!" .`))
	if r := exchange(t, h, m, signedWith(key), false).one(t); r.Rcode != dns.RcodeSuccess {
		t.Errorf("update with the dev key: %s", rcodeName(r.Rcode))
	}
}
