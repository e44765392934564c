package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/deploy/fleet"
	"github.com/dsn-ims/dsn/dnsreport"
)

// imsNode is one SRV target of the IMS domain: name.<ims zone> at ip:port.
type imsNode struct {
	name     string
	ip       string
	port     int
	priority uint16
}

// publishIMS replaces the SIP entries of the IMS zone with one
// TSIG-signed UPDATE: the operator's static entry for the IMS network in
// the shared DNS. The zone's NAPTR names UDP (RFC 3263 4.1), the
// _sip._udp SRV set the nodes, each node has its A record.
func publishIMS(t *testing.T, f *fleet.DNSFleet, zone string, nodes ...imsNode) {
	t.Helper()
	apex, srvName := zone+".", "_sip._udp."+zone+"."
	ch := dnsreport.Change{Zone: zone,
		DeleteRRsets: []dnsreport.RRsetRef{{Name: apex, Type: dns.TypeNAPTR}, {Name: srvName, Type: dns.TypeSRV}},
		Add: []dns.RR{&dns.NAPTR{Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeNAPTR, Class: dns.ClassINET, Ttl: 30},
			Order: 10, Preference: 10, Flags: "s", Service: "SIP+D2U", Replacement: srvName}},
	}
	for _, n := range nodes {
		target := n.name + "." + zone + "."
		ch.DeleteRRsets = append(ch.DeleteRRsets, dnsreport.RRsetRef{Name: target, Type: dns.TypeA})
		ch.Add = append(ch.Add,
			&dns.SRV{Hdr: dns.RR_Header{Name: srvName, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 30},
				Priority: n.priority, Weight: 10, Port: uint16(n.port), Target: target},
			&dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.ParseIP(n.ip)})
	}
	f.Update(t, ch)
	if got := f.Dig(srvName, "SRV"); len(got) != len(nodes) {
		t.Fatalf("BIND serves %s SRV %v, want %d records", srvName, got, len(nodes))
	}
	if got := f.Dig(apex, "NAPTR"); len(got) != 1 || !strings.Contains(got[0], srvName) {
		t.Fatalf("BIND serves %s NAPTR %v, want one pointing to %s", apex, got, srvName)
	}
}

// callees writes a SIPp injection file with one Request-URI per line.
func callees(t *testing.T, uris ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "callees.csv")
	if err := os.WriteFile(p, []byte("SEQUENTIAL\n"+strings.Join(uris, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 3 acceptance 5 with a real resolver: BIND9 serves the DSN zone,
// e164.arpa and an IMS zone; the nodes resolve ENUM and RFC 3263 through
// it. A CSCF (SIPp) finds a representative through DNS and calls numbers:
// one that ENUM maps to a DSN phone, one that ENUM maps to an IMS
// subscriber, whose IMS node the DSN node finds by SRV, with fail-over to
// the next SRV target when the first is dead or answers 503.
func TestIMSInterworkingThroughBIND(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	fleet.RequireTool(t, "sipp")
	const (
		domain   = "dsn.ims"
		imsZone  = "ims.test"
		dsnNum   = "+15550001"
		imsNum   = "+4930123"
		calls    = 10
		callTime = "100"
	)
	f := fleet.NewDNSWith(t, domain, 3, fleet.DNSOptions{Zones: []string{imsZone}, Resolver: true})
	f.Settled(t, 2)

	// ENUM provisioning as an operator does it: dsnctl, TSIG-signed UPDATE.
	f.Dsnctl(t, "enum", "add", dsnNum, "sip:alice@"+domain)
	f.Dsnctl(t, "enum", "add", imsNum, "sip:bob@"+imsZone)
	for num, want := range map[string]string{dsnNum: "sip:alice@" + domain, imsNum: "sip:bob@" + imsZone} {
		name, _ := dnsreport.ENUMName(num, "")
		if got := f.Dig(name, "NAPTR"); len(got) != 1 || !strings.Contains(got[0], want) {
			t.Fatalf("ENUM %s: BIND serves %v, want a NAPTR to %s", num, got, want)
		}
	}

	// The IMS node (a SIPp UAS on its own address) in DNS, statically.
	live := imsNode{name: "ims-node", ip: "127.0.0.50", port: fleet.FreeUDPPort(t, "127.0.0.50"), priority: 10}
	publishIMS(t, f, imsZone, live)

	// Alice's phone registers through one node; the CSCF calls whichever
	// node DNS names first.
	nodes := f.Live()
	alicePort := fleet.FreeUDPPort(t, "127.0.0.1")
	fleet.SIPp(t, nodes[0].SIP, "-sf", scenarios+"register.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(alicePort),
		"-s", "alice", "-key", "domain", domain, "-m", "1")
	targets, err := fleet.NewCSCF(f.Named, 1).Resolve(domain)
	if err != nil {
		t.Fatal(err)
	}
	entry := targets[0].String()
	t.Logf("CSCF resolved %s to %v; calling %s", domain, targets, entry)
	caller := func(t *testing.T, scenario, ruri, params string, n int) {
		t.Helper()
		uac := fleet.StartSIPp(t, entry, "-sf", "testdata/"+scenario, "-inf", callees(t, ruri), "-key", "uriparams", params,
			"-i", "127.0.0.1", "-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")),
			"-m", strconv.Itoa(n), "-r", "10", "-d", callTime, "-timeout", "30s", "-timeout_error")
		uac.Wait(t, 40*time.Second)
	}
	imsUAS := func(t *testing.T, n imsNode, scenario string, calls int) *fleet.SIPpProc {
		return fleet.StartSIPp(t, "", "-sf", scenario, "-i", n.ip, "-p", strconv.Itoa(n.port),
			"-m", strconv.Itoa(calls), "-timeout", "30s", "-timeout_error")
	}

	t.Run("number mapped by ENUM to a DSN phone", func(t *testing.T) {
		uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", strconv.Itoa(alicePort),
			"-m", strconv.Itoa(2*calls), "-timeout", "30s", "-timeout_error")
		caller(t, "uac_uri.xml", "tel:"+dsnNum, "", calls)
		caller(t, "uac_uri.xml", "sip:"+dsnNum+"@"+domain, ";user=phone", calls)
		uas.Wait(t, 20*time.Second)
	})

	t.Run("number mapped by ENUM to an IMS subscriber, IMS node by SRV", func(t *testing.T) {
		uas := imsUAS(t, live, "testdata/uas_via.xml", calls)
		caller(t, "uac_uri_contact.xml", "tel:"+imsNum, "", calls)
		uas.Wait(t, 20*time.Second)
	})

	t.Run("first SRV target dead: fail-over to the second", func(t *testing.T) {
		dead := imsNode{name: "ims-dead", ip: "127.0.0.51", port: fleet.FreeUDPPort(t, "127.0.0.51"), priority: 10}
		second := live
		second.priority = 20
		publishIMS(t, f, imsZone, dead, second)
		uas := imsUAS(t, second, "testdata/uas_via.xml", 2)
		start := time.Now()
		caller(t, "uac_uri_contact.xml", "tel:"+imsNum, "", 2)
		t.Logf("2 calls completed through the second target in %.1fs (the first, %s:%d, never answers)",
			time.Since(start).Seconds(), dead.ip, dead.port)
		uas.Wait(t, 20*time.Second)
	})

	t.Run("first SRV target answers 503: fail-over to the second", func(t *testing.T) {
		busy := imsNode{name: "ims-busy", ip: "127.0.0.52", port: fleet.FreeUDPPort(t, "127.0.0.52"), priority: 10}
		second := live
		second.priority = 20
		publishIMS(t, f, imsZone, busy, second)
		// Each of them must see every call: the 503 first, then the call.
		trace := filepath.Join(t.TempDir(), "busy-messages.log")
		shed := fleet.StartSIPp(t, "", "-sf", "testdata/uas_503.xml", "-i", busy.ip, "-p", strconv.Itoa(busy.port),
			"-m", strconv.Itoa(calls), "-timeout", "30s", "-timeout_error", "-trace_msg", "-message_file", trace)
		uas := imsUAS(t, second, "testdata/uas_via.xml", calls)
		caller(t, "uac_uri_contact.xml", "tel:"+imsNum, "", calls)
		uas.Wait(t, 20*time.Second)
		shed.Wait(t, 20*time.Second)

		t.Run("every 503 ACKed by the proxy's client transaction", func(t *testing.T) {
			b, err := os.ReadFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			invites, acks := strings.Count(string(b), "\nINVITE sip:"), strings.Count(string(b), "\nACK sip:")
			if invites != calls {
				t.Fatalf("the 503 node got %d INVITEs, want %d", invites, calls)
			}
			if acks != invites {
				// RFC 3261 17.1.1.3: the client transaction ACKs every
				// non-2xx final response, also when the proxy fails over.
				t.Fatalf("only %d of %d 503 responses were ACKed (RFC 3261 17.1.1.3)", acks, invites)
			}
		})
	})

	t.Run("unknown number: 404", func(t *testing.T) {
		c := fleet.RunSIPpCounted(t, 30*time.Second, entry, "-sf", "testdata/uac_uri_contact.xml",
			"-inf", callees(t, "tel:+999000111"), "-key", "uriparams", "", "-i", "127.0.0.1",
			"-p", strconv.Itoa(fleet.FreeUDPPort(t, "127.0.0.1")), "-m", "1", "-recv_timeout", "5000")
		if c.Successful != 0 || c.Failed != 1 {
			t.Fatalf("call to an unknown number: %+v", c)
		}
		if !strings.Contains(strings.Join(c.Errors, "\n"), "404") {
			t.Fatalf("want a 404 for a number ENUM does not know, SIPp logged: %v", c.Errors)
		}
	})
}
