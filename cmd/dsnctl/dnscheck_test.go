package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/node"
)

// dnsCheckSetup is a node whose status names sn-a and sn-b as
// representatives, and the embedded DNS server for dsn.test.
func dnsCheckSetup(t *testing.T) (*fakeAdmin, string, *dnsFixture) {
	t.Helper()
	a, b, c := threeNodes()
	f := &fakeAdmin{status: statusOf(b, a, []node.PeerInfo{c, a}, "dsn.test", []node.PeerInfo{a, b})}
	return f, f.start(t), startDNS(t, "dsn.test")
}

func TestDNSCheckConsistent(t *testing.T) {
	_, admin, d := dnsCheckSetup(t)
	d.publish(t, "dsn.test.", "dsn.test.", "sn-a", "127.0.0.1:5060")
	d.publish(t, "dsn.test.", "dsn.test.", "sn-b", "127.0.0.2:5060")

	out := dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "dns-check").want(t, 0).stdout
	mustContain(t, out, "representatives seen by sn-b: sn-a (127.0.0.1:5060) sn-b (127.0.0.2:5060)")
	hasRows(t, out, "consistent: 8 ok, 0 stale, 0 missing, 0 ignored",
		"OK _sip._udp.dsn.test. SRV 5060 sn-a.dsn.test. sn-a", "OK _sip._tcp.dsn.test. SRV 5060 sn-b.dsn.test. sn-b",
		"OK sn-b.dsn.test. A 127.0.0.2 sn-b", "OK dsn.test. A 127.0.0.1 sn-a")
	if strings.Contains(out, "STALE") || strings.Contains(out, "MISSING") {
		t.Errorf("consistent DNS reported stale or missing:\n%s", out)
	}

	var res dnsCheckResult
	dsnctl(t, map[string]string{envDNSServer: d.addr}, "-admin", admin, "-o", "json", "dns-check").want(t, 0).decode(t, &res)
	if !res.Consistent || res.OK != 8 || len(res.Entries) != 8 || res.Domain != "dsn.test." || res.Source != "query" {
		t.Errorf("json dns-check %+v", res)
	}
	for _, e := range res.Entries {
		if e.State != stateOK || (e.Node != "sn-a" && e.Node != "sn-b") {
			t.Errorf("entry %+v", e)
		}
	}

	// The same through a signed AXFR.
	res = dnsCheckResult{}
	dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "-tsig-key-file", d.keyFile, "-o", "json", "dns-check", "-axfr").want(t, 0).decode(t, &res)
	if !res.Consistent || res.OK != 8 || res.Source != "axfr" {
		t.Errorf("json dns-check -axfr %+v", res)
	}
}

func TestDNSCheckStaleAndMissing(t *testing.T) {
	f, admin, d := dnsCheckSetup(t)
	d.publish(t, "dsn.test.", "dsn.test.", "sn-a", "127.0.0.1:5060")
	// A representative that crashed and was never removed.
	d.publish(t, "dsn.test.", "dsn.test.", "ghost", "127.0.0.9:5070")
	// sn-b is never published: missing.

	r := dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "dns-check").want(t, 1)
	hasRows(t, r.stdout,
		"STALE _sip._udp.dsn.test. SRV 5070 ghost.dsn.test. ghost",
		"STALE _sip._tcp.dsn.test. SRV 5070 ghost.dsn.test. ghost",
		"STALE dsn.test. A 127.0.0.9 -",
		"STALE ghost.dsn.test. A 127.0.0.9 ghost",
		"MISSING _sip._udp.dsn.test. SRV 5060 sn-b.dsn.test. sn-b",
		"MISSING _sip._tcp.dsn.test. SRV 5060 sn-b.dsn.test. sn-b",
		"MISSING dsn.test. A 127.0.0.2 sn-b",
		"MISSING sn-b.dsn.test. A 127.0.0.2 sn-b",
		"OK sn-a.dsn.test. A 127.0.0.1 sn-a",
		"INCONSISTENT: 4 ok, 4 stale, 4 missing, 0 ignored")

	var res dnsCheckResult
	dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "-o", "json", "dns-check").want(t, 1).decode(t, &res)
	if res.Consistent || res.Stale != 4 || res.Missing != 4 || res.OK != 4 {
		t.Errorf("json %+v", res)
	}

	// -ignore turns a static target's entries into IGNORED.
	res = dnsCheckResult{}
	dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "-o", "json", "dns-check", "-ignore", "ghost").want(t, 1).decode(t, &res)
	if res.Stale != 0 || res.Ignored != 4 || res.Missing != 4 {
		t.Errorf("with -ignore ghost: %+v", res)
	}

	// Once the ring's view matches (sn-b gone, ghost's records removed and
	// sn-b's published) the check passes again.
	ghost := dnsreport.Representative{Zone: "dsn.test.", Domain: "dsn.test.", Label: "ghost",
		IPs: []netip.Addr{netip.MustParseAddr("127.0.0.9")}, Port: 5070, TTL: 30e9, Priority: 10, Weight: 10}
	ch, err := ghost.DeleteChange()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.Update(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	d.publish(t, "dsn.test.", "dsn.test.", "sn-b", "127.0.0.2:5060")
	dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "dns-check").want(t, 0)

	// The node sees no representatives: everything published is stale.
	f.status.Representatives = nil
	r = dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "dns-check").want(t, 1)
	mustContain(t, r.stdout, "representatives seen by sn-b: none", "0 ok, 8 stale, 0 missing")
}

func TestDNSCheckErrors(t *testing.T) {
	f, admin, d := dnsCheckSetup(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no DNS server", []string{"-admin", admin, "dns-check"}, []string{"no DNS server: give -dns-server", "DSNCTL_DNS_SERVER"}},
		{"AXFR without key", []string{"-admin", admin, "-dns-server", d.addr, "dns-check", "-axfr"}, []string{"-axfr needs -tsig-key-file"}},
		{"DNS server down", []string{"-admin", admin, "-dns-server", deadAddr(t), "-timeout", "2s", "dns-check"}, []string{"dns-check: read dsn.test.", "check that the DNS server address and port are right"}},
		{"admin down", []string{"-admin", deadAddr(t), "-dns-server", d.addr, "dns-check"}, []string{"cannot reach the admin API"}},
		{"domain outside zone", []string{"-admin", admin, "-dns-server", d.addr, "-dns-zone", "other.test", "dns-check"}, []string{"not inside -dns-zone other.test."}},
		{"bad key file", []string{"-admin", admin, "-dns-server", d.addr, "-tsig-key-file", "/nonexistent/k.key", "dns-check"}, []string{"-tsig-key-file", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dsnctl(t, nil, tc.args...).want(t, 2)
			mustContain(t, r.stderr, tc.want...)
		})
	}
	f.status.Representatives = []node.PeerInfo{{Name: "old", ID: "1"}}
	r := dsnctl(t, nil, "-admin", admin, "-dns-server", d.addr, "dns-check").want(t, 2)
	mustContain(t, r.stderr, "without a SIP address")
}

func TestCompareDNSSharedAddressAndPorts(t *testing.T) {
	// Two representatives behind one IP, different ports: one D. A
	// record serves both; a published SRV with the wrong port is stale
	// and the right one missing.
	reps := []dnsRep{
		{Name: "x", DNSName: "x.z.", addr: netip.MustParseAddrPort("192.0.2.1:5060")},
		{Name: "y", DNSName: "y.z.", addr: netip.MustParseAddrPort("192.0.2.1:5062")},
	}
	srv := func(name string, port uint16, target string) *dns.SRV {
		return &dns.SRV{Hdr: dns.RR_Header{Name: name}, Port: port, Target: target}
	}
	ip := netip.MustParseAddr("192.0.2.1")
	pub := dnsreport.Published{
		UDP:         []*dns.SRV{srv("_sip._udp.z.", 5060, "x.z."), srv("_sip._udp.z.", 5099, "y.z.")},
		TCP:         []*dns.SRV{srv("_sip._tcp.z.", 5060, "x.z."), srv("_sip._tcp.z.", 5062, "y.z.")},
		DomainAddrs: []netip.Addr{ip},
		Targets:     map[string][]netip.Addr{"x.z.": {ip}, "y.z.": {ip}},
	}
	got := map[string]string{}
	for _, e := range compareDNS(reps, pub, "z.", "z.", nil) {
		got[e.Name+" "+e.Type+" "+e.Value] = e.State
	}
	want := map[string]string{
		"_sip._udp.z. SRV 5060 x.z.": stateOK,
		"_sip._udp.z. SRV 5099 y.z.": stateStale,
		"_sip._udp.z. SRV 5062 y.z.": stateMissing,
		"_sip._tcp.z. SRV 5060 x.z.": stateOK,
		"_sip._tcp.z. SRV 5062 y.z.": stateOK,
		"z. A 192.0.2.1":             stateOK,
		"x.z. A 192.0.2.1":           stateOK,
		"y.z. A 192.0.2.1":           stateOK,
	}
	if len(got) != len(want) {
		t.Errorf("got %d entries, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
