package dnsreport_test

import (
	"context"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dsn-ims/dsn/dnsreport"
	"github.com/dsn-ims/dsn/dnsreport/bindtest"
	"github.com/dsn-ims/dsn/dnsreport/dnsserver"
)

// serverUnderTest is an authoritative DNS server loaded with
// conformanceZones that accepts UPDATE and AXFR signed with Key.
type serverUnderTest interface {
	Addr() string
	Key() dnsreport.Key
}

// conformanceZones: the DSN zone (empty, representatives publish into it),
// an IMS zone with RFC 3263 data and the ENUM tree.
func conformanceZones() []bindtest.Zone {
	return []bindtest.Zone{
		{Origin: "dsn.test.", Text: bindtest.MinimalZone("dsn.test.")},
		{Origin: "ims.test.", Text: bindtest.MinimalZone("ims.test.",
			`ims.test.            NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.ims.test.`,
			`ims.test.            NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.ims.test.`,
			`_sip._tcp.ims.test.  SRV 20 10 5071 cscf2.ims.test.`,
			`_sip._tcp.ims.test.  SRV 10 10 5070 cscf1.ims.test.`,
			`_sip._udp.ims.test.  SRV 10 10 5060 cscf1.ims.test.`,
			`cscf1.ims.test.      A 127.0.0.11`,
			`cscf2.ims.test.      A 127.0.0.12`,
		)},
		{Origin: "e164.arpa.", Text: bindtest.MinimalZone("e164.arpa.",
			`6.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@dsn.test!" .`,
			`7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 10 20 "u" "E2U+sip" "!^.*$!sip:second@dsn.test!" .`,
			`7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:first@dsn.test!" .`,
			`7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 5 10 "u" "E2U+email:mailto" "!^.*$!mailto:x@dsn.test!" .`,
			`*.8.8.8.1.e164.arpa. NAPTR 100 10 "u" "E2U+SIP" "/^\\+(1888.*)$/sip:\\1@ims.test/" .`,
		)},
	}
}

var conformanceRecords = dnsreport.DefaultConfig().Records

func rep(label string, port uint16, ips ...string) dnsreport.Representative {
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	return conformanceRecords.Representative("dsn.test.", "dsn.test.", label, addrs, port)
}

func newClient(t testing.TB, addr string, key *dnsreport.Key) *dnsreport.Client {
	t.Helper()
	cfg := dnsreport.FastConfig().Client
	cfg.Servers = []string{addr}
	cfg.Timeout = 2 * time.Second
	cfg.Insecure = key == nil
	c, err := dnsreport.NewClient(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publish(t *testing.T, c *dnsreport.Client, r dnsreport.Representative) {
	t.Helper()
	ch, err := r.PublishChange()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(context.Background(), ch); err != nil {
		t.Fatalf("publish %s: %v", r.Label, err)
	}
}

func deleteRep(t *testing.T, c *dnsreport.Client, r dnsreport.Representative) error {
	t.Helper()
	ch, err := r.DeleteChange()
	if err != nil {
		t.Fatal(err)
	}
	return c.Update(context.Background(), ch)
}

// view is what a plain (unsigned, dig-like) query sees.
type view struct {
	ex   dnsreport.Exchanger
	addr string
}

func (v view) srv(t *testing.T, name string) []string {
	t.Helper()
	srvs, err := dnsreport.ReadSRV(context.Background(), v.ex, v.addr, name)
	if err != nil {
		t.Fatalf("SRV %s: %v", name, err)
	}
	var out []string
	for _, s := range srvs {
		out = append(out, strings.Join(strings.Fields(strings.TrimPrefix(s.String(), s.Hdr.String())), " "))
	}
	slices.Sort(out)
	return out
}

func (v view) addrs(t *testing.T, name string) []string {
	t.Helper()
	as, err := dnsreport.ReadAddrs(context.Background(), v.ex, v.addr, name)
	if err != nil {
		t.Fatalf("A/AAAA %s: %v", name, err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func expect(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// runConformance is the suite every DNS server the product works with must
// pass: BIND9 (the production reference) and the embedded dnsserver.
func runConformance(t *testing.T, srv serverUnderTest) {
	key := srv.Key()
	client := newClient(t, srv.Addr(), &key)
	v := view{ex: dnsreport.NewNetExchanger(2*time.Second, nil), addr: srv.Addr()}
	n1 := rep("n1", 5060, "127.0.0.21", "fd00::21")
	n2 := rep("n2", 5062, "127.0.0.22")

	t.Run("signed publish is visible exactly", func(t *testing.T) {
		// n1 first appears with a stale address, as after a restart on a
		// new IP; ReadNode + ReplaceChange moves it.
		publish(t, client, rep("n1", 5060, "127.0.0.99"))
		old, found, err := dnsreport.ReadNode(context.Background(), v.ex, srv.Addr(), conformanceRecords, "dsn.test.", "dsn.test.", "n1")
		if err != nil || !found || old.Port != 5060 || len(old.IPs) != 1 || old.IPs[0].String() != "127.0.0.99" {
			t.Fatalf("ReadNode = %+v, %v, %v", old, found, err)
		}
		ch, err := n1.ReplaceChange(old)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Update(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
		publish(t, client, n2)
		publish(t, client, n2) // idempotent
		want := []string{"10 10 5060 n1.dsn.test.", "10 10 5062 n2.dsn.test."}
		expect(t, "SRV _sip._udp.dsn.test.", v.srv(t, "_sip._udp.dsn.test."), want)
		expect(t, "SRV _sip._tcp.dsn.test.", v.srv(t, "_sip._tcp.dsn.test."), want)
		expect(t, "n1.dsn.test.", v.addrs(t, "n1.dsn.test."), []string{"127.0.0.21", "fd00::21"})
		expect(t, "n2.dsn.test.", v.addrs(t, "n2.dsn.test."), []string{"127.0.0.22"})
		expect(t, "dsn.test.", v.addrs(t, "dsn.test."), []string{"127.0.0.21", "127.0.0.22", "fd00::21"})
		p, err := dnsreport.ReadPublished(context.Background(), v.ex, srv.Addr(), "dsn.test.")
		if err != nil || len(p.UDP) != 2 || len(p.Targets) != 2 || len(p.Targets["n1.dsn.test."]) != 2 {
			t.Errorf("ReadPublished = %+v, %v", p, err)
		}
	})

	t.Run("delete removes exactly one node", func(t *testing.T) {
		if err := deleteRep(t, client, n1); err != nil {
			t.Fatal(err)
		}
		expect(t, "SRV _sip._udp.dsn.test.", v.srv(t, "_sip._udp.dsn.test."), []string{"10 10 5062 n2.dsn.test."})
		expect(t, "SRV _sip._tcp.dsn.test.", v.srv(t, "_sip._tcp.dsn.test."), []string{"10 10 5062 n2.dsn.test."})
		expect(t, "n1.dsn.test.", v.addrs(t, "n1.dsn.test."), nil)
		expect(t, "n2.dsn.test.", v.addrs(t, "n2.dsn.test."), []string{"127.0.0.22"})
		expect(t, "dsn.test.", v.addrs(t, "dsn.test."), []string{"127.0.0.22"})
		// Predecessor, successor and backup all send the same delete.
		for i := 0; i < 3; i++ {
			if err := deleteRep(t, client, n1); err != nil {
				t.Fatalf("repeated delete %d: %v", i, err)
			}
		}
		expect(t, "SRV after repeated deletes", v.srv(t, "_sip._udp.dsn.test."), []string{"10 10 5062 n2.dsn.test."})
	})

	n3 := rep("n3", 5064, "127.0.0.23")
	t.Run("unsigned update is refused", func(t *testing.T) {
		ch, err := n3.PublishChange()
		if err != nil {
			t.Fatal(err)
		}
		err = newClient(t, srv.Addr(), nil).Update(context.Background(), ch)
		if !errors.Is(err, dnsreport.ErrRefused) && !errors.Is(err, dnsreport.ErrNotAuth) {
			t.Fatalf("unsigned UPDATE: err = %v, want REFUSED or NOTAUTH", err)
		}
		ues := dnsreport.UpdateErrors(err)
		if len(ues) != 1 || ues[0].Server != srv.Addr() || ues[0].Hint() == "" {
			t.Errorf("typed errors %v", ues)
		}
		expect(t, "n3 after unsigned update", v.addrs(t, "n3.dsn.test."), nil)
	})

	t.Run("wrong secret and unknown key are refused", func(t *testing.T) {
		ch, err := n3.PublishChange()
		if err != nil {
			t.Fatal(err)
		}
		wrong, err := dnsreport.GenerateKey(key.Name, key.Algorithm, crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		err = newClient(t, srv.Addr(), &wrong).Update(context.Background(), ch)
		if !errors.Is(err, dnsreport.ErrNotAuth) {
			t.Fatalf("wrong secret: err = %v, want NOTAUTH", err)
		}
		if ue := dnsreport.UpdateErrors(err)[0]; ue.TSIGError != dns.RcodeBadSig || !strings.Contains(ue.Hint(), "secret") {
			t.Errorf("wrong secret: TSIG error %d, hint %q", ue.TSIGError, ue.Hint())
		}
		unknown, err := dnsreport.GenerateKey("no-such-key", "", crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		err = newClient(t, srv.Addr(), &unknown).Update(context.Background(), ch)
		if !errors.Is(err, dnsreport.ErrNotAuth) || dnsreport.UpdateErrors(err)[0].TSIGError != dns.RcodeBadKey {
			t.Fatalf("unknown key: err = %v, want NOTAUTH/BADKEY", err)
		}
		expect(t, "n3 after refused updates", v.addrs(t, "n3.dsn.test."), nil)
	})

	resolver := func(t *testing.T) *dnsreport.DNSResolver {
		cfg := dnsreport.FastConfig().Resolver
		cfg.Server, cfg.Timeout = srv.Addr(), 2*time.Second
		r, err := dnsreport.NewResolver(cfg, nil, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("ENUM NAPTR specific and wildcard", func(t *testing.T) {
		r := resolver(t)
		for number, want := range map[string]string{
			"+4930123456":    "sip:alice@dsn.test",
			"+49 30 123457":  "sip:first@dsn.test",
			"+1 888 5551234": "sip:18885551234@ims.test",
		} {
			if got, err := r.ENUM(context.Background(), number); err != nil || got != want {
				t.Errorf("ENUM(%s) = %q, %v; want %q", number, got, err, want)
			}
		}
		if got, err := r.ENUM(context.Background(), "+4930123499"); !errors.Is(err, dnsreport.ErrNotFound) {
			t.Errorf("unknown number: %q, %v", got, err)
		}
	})

	t.Run("ENUM provisioning by signed UPDATE", func(t *testing.T) {
		naptr, err := dnsreport.ENUMRecord("+4930555", "sip:bob@dsn.test", "", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Update(context.Background(), dnsreport.Change{Zone: "e164.arpa.", Add: []dns.RR{naptr}}); err != nil {
			t.Fatal(err)
		}
		if got, err := resolver(t).ENUM(context.Background(), "+4930555"); err != nil || got != "sip:bob@dsn.test" {
			t.Errorf("provisioned number: %q, %v", got, err)
		}
	})

	t.Run("RFC 3263 via NAPTR and SRV", func(t *testing.T) {
		r := resolver(t)
		for uri, want := range map[string][]string{
			"sip:bob@ims.test":            {"tcp:127.0.0.11:5070", "tcp:127.0.0.12:5071", "udp:127.0.0.11:5060"},
			"sip:bob@cscf2.ims.test:5999": {"udp:127.0.0.12:5999"},
			"sip:alice@dsn.test":          {"udp:127.0.0.22:5062", "tcp:127.0.0.22:5062"},
		} {
			ts, err := r.Locate(context.Background(), uri)
			if err != nil {
				t.Errorf("Locate(%s): %v", uri, err)
				continue
			}
			var got []string
			for _, tg := range ts {
				got = append(got, tg.String())
			}
			expect(t, "Locate("+uri+")", got, want)
		}
	})

	t.Run("AXFR with key", func(t *testing.T) {
		rrs, err := dnsreport.Transfer(context.Background(), srv.Addr(), "dsn.test.", &key, 2*time.Second)
		if err != nil {
			t.Fatalf("AXFR: %v", err)
		}
		var text []string
		for _, rr := range rrs {
			text = append(text, strings.Join(strings.Fields(rr.String()), " "))
		}
		all := strings.Join(text, "\n")
		if rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
			t.Errorf("AXFR not framed by SOA:\n%s", all)
		}
		for _, want := range []string{"n2.dsn.test. 30 IN A 127.0.0.22", "_sip._udp.dsn.test. 30 IN SRV 10 10 5062 n2.dsn.test."} {
			if !strings.Contains(all, want) {
				t.Errorf("AXFR lacks %q:\n%s", want, all)
			}
		}
		if strings.Contains(all, "n1.dsn.test.") {
			t.Errorf("AXFR still has the deleted node:\n%s", all)
		}
		if _, err := dnsreport.Transfer(context.Background(), srv.Addr(), "dsn.test.", nil, 2*time.Second); err == nil {
			t.Error("AXFR without key allowed")
		}
		wrong, _ := dnsreport.GenerateKey(key.Name, key.Algorithm, crand.Reader)
		if _, err := dnsreport.Transfer(context.Background(), srv.Addr(), "dsn.test.", &wrong, 2*time.Second); err == nil {
			t.Error("AXFR with a wrong secret allowed")
		}
	})

	t.Run("reporter publishes and deletes through the server", func(t *testing.T) {
		r, err := dnsreport.NewReporter(dnsreport.FastConfig().Reporter, client, dnsreport.SystemClock{},
			rand.New(rand.NewPCG(5, 5)), zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		n4 := rep("n4", 5066, "127.0.0.24")
		pub, _ := n4.PublishChange()
		del, _ := n4.DeleteChange()
		if err := r.Submit(dnsreport.Intent{Key: "self", Change: pub, Role: "self", Refresh: true}); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx, "self"); err != nil {
			t.Fatal(err)
		}
		expect(t, "n4 after publish", v.addrs(t, "n4.dsn.test."), []string{"127.0.0.24"})
		if err := r.Submit(dnsreport.Intent{Key: "self", Change: del, Role: "leave"}); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx, "self"); err != nil {
			t.Fatal(err)
		}
		expect(t, "n4 after graceful leave", v.addrs(t, "n4.dsn.test."), nil)
		expect(t, "SRV after graceful leave", v.srv(t, "_sip._udp.dsn.test."), []string{"10 10 5062 n2.dsn.test."})
		r.Close()
		if err := <-done; !errors.Is(err, dnsreport.ErrClosed) {
			t.Errorf("Run: %v", err)
		}
	})
}

// bindServer adapts bindtest.Server.
type bindServer struct {
	*bindtest.Server
	key dnsreport.Key
}

func (b bindServer) Key() dnsreport.Key { return b.key }

func startBIND(t testing.TB) bindServer {
	t.Helper()
	s := bindtest.Require(t, bindtest.Config{Zones: conformanceZones()})
	keys, warn, err := dnsreport.LoadKeyFile(s.KeyFile())
	if err != nil {
		t.Fatalf("key file written by tsig-keygen: %v", err)
	}
	if warn != nil {
		t.Errorf("bindtest key file should be private: %s", warn)
	}
	key, err := dnsreport.SelectKey(keys, s.KeyName())
	if err != nil {
		t.Fatal(err)
	}
	return bindServer{Server: s, key: key}
}

func TestConformanceBIND(t *testing.T) {
	runConformance(t, startBIND(t))
}

// embeddedServer adapts the embedded dnsserver (dev mode, tests).
type embeddedServer struct {
	*dnsserver.Server
	key dnsreport.Key
}

func (e embeddedServer) Key() dnsreport.Key { return e.key }

func startEmbedded(t testing.TB) embeddedServer {
	t.Helper()
	key, err := dnsreport.GenerateKey("dsn-test-key", "", crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dnsserver.DefaultConfig()
	for _, z := range conformanceZones() {
		cfg.Zones = append(cfg.Zones, dnsserver.ZoneConfig{Origin: z.Origin, Text: z.Text})
	}
	cfg.Keys = []dnsserver.Key{{Name: key.Name, Algorithm: key.Algorithm, Secret: key.Secret}}
	cfg.AllowAXFR = true
	logger := zap.NewNop() // benchmarks: no per-request logging
	if tt, ok := t.(*testing.T); ok {
		logger = zaptest.NewLogger(tt)
	}
	s, err := dnsserver.Start(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return embeddedServer{Server: s, key: key}
}

func TestConformanceEmbedded(t *testing.T) {
	runConformance(t, startEmbedded(t))
}
