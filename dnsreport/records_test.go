package dnsreport

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func testRep(label string, port uint16, ips ...string) Representative {
	var addrs []netip.Addr
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	return DefaultConfig().Records.Representative("dsn.test", "dsn.test", label, addrs, port)
}

// msgLines renders the update section of the change's message, one record
// per line, TTL and class included.
func msgLines(c Change) []string {
	var out []string
	for _, rr := range c.Msg().Ns {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

func TestPublishChange(t *testing.T) {
	r := testRep("n1", 5062, "127.0.0.21", "fd00::21", "::ffff:127.0.0.21")
	ch, err := r.PublishChange()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"n1.dsn.test. 0 CLASS255 A",
		"n1.dsn.test. 0 CLASS255 AAAA",
		"n1.dsn.test. 30 IN A 127.0.0.21",
		"n1.dsn.test. 30 IN AAAA fd00::21",
		"_sip._udp.dsn.test. 30 IN SRV 10 10 5062 n1.dsn.test.",
		"_sip._tcp.dsn.test. 30 IN SRV 10 10 5062 n1.dsn.test.",
		"dsn.test. 30 IN A 127.0.0.21",
		"dsn.test. 30 IN AAAA fd00::21",
	}
	if got := msgLines(ch); !slices.Equal(got, want) {
		t.Errorf("publish update section:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := ch.Validate(); err != nil {
		t.Error(err)
	}
}

func TestDeleteChangeNeverDeletesSharedRRsets(t *testing.T) {
	r := testRep("n1", 5060, "127.0.0.21")
	ch, err := r.DeleteChange()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"n1.dsn.test. 0 CLASS255 ANY", // class ANY
		"_sip._udp.dsn.test. 0 NONE SRV 10 10 5060 n1.dsn.test.",
		"_sip._tcp.dsn.test. 0 NONE SRV 10 10 5060 n1.dsn.test.",
		"dsn.test. 0 NONE A 127.0.0.21",
	}
	if got := msgLines(ch); !slices.Equal(got, want) {
		t.Errorf("delete update section:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Only the node's own name may be deleted wholesale.
	for _, n := range ch.DeleteNames {
		if n != r.NodeName() {
			t.Errorf("deletes shared name %s", n)
		}
	}
	if len(ch.DeleteRRsets) != 0 {
		t.Errorf("deletes RRsets %v", ch.DeleteRRsets)
	}
	// Building the message twice gives the same result: records are copied.
	if a, b := msgLines(ch), msgLines(ch); !slices.Equal(a, b) {
		t.Error("Msg modified the change")
	}
	if ch.Delete[0].Header().Class != dns.ClassINET {
		t.Error("Msg changed the class of the change's own record")
	}
}

func TestReplaceChange(t *testing.T) {
	old := testRep("n1", 5060, "127.0.0.21", "127.0.0.99")
	now := testRep("n1", 5070, "127.0.0.21")
	ch, err := now.ReplaceChange(old)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(msgLines(ch), "\n")
	for _, want := range []string{
		"_sip._udp.dsn.test. 0 NONE SRV 10 10 5060 n1.dsn.test.",
		"dsn.test. 0 NONE A 127.0.0.99",
		"dsn.test. 30 IN A 127.0.0.21",
		"_sip._udp.dsn.test. 30 IN SRV 10 10 5070 n1.dsn.test.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("replace change lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NONE A 127.0.0.21") {
		t.Errorf("replace change deletes an address it keeps:\n%s", got)
	}
}

func TestRepresentativeValidate(t *testing.T) {
	good := testRep("n1", 5060, "127.0.0.1")
	tests := []struct {
		name string
		mod  func(*Representative)
		want string
	}{
		{"domain outside zone", func(r *Representative) { r.Domain = "other.test." }, "not inside zone"},
		{"domain below zone ok", func(r *Representative) { r.Domain = "sip.dsn.test." }, ""},
		{"two labels", func(r *Representative) { r.Label = "a.b" }, "single DNS label"},
		{"no ip", func(r *Representative) { r.IPs = nil }, "no IP"},
		{"unspecified ip", func(r *Representative) { r.IPs = []netip.Addr{netip.IPv4Unspecified()} }, "concrete advertise address"},
		{"port 0", func(r *Representative) { r.Port = 0 }, "port is 0"},
		{"ttl", func(r *Representative) { r.TTL = time.Millisecond }, "TTL"},
		{"zone", func(r *Representative) { r.Zone = "" }, "zone"},
	}
	for _, tt := range tests {
		r := good
		tt.mod(&r)
		err := r.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
		if _, perr := r.PublishChange(); perr == nil {
			t.Errorf("%s: PublishChange accepted it", tt.name)
		}
	}
}

func TestNodeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"SN-1": "sn-1", "node_7.example": "node-7-example", "--x--": "x",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got, err := NodeLabel(in); err != nil || got != want {
			t.Errorf("NodeLabel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NodeLabel("..."); err == nil {
		t.Error("empty label accepted")
	}
}

func TestChangeValidate(t *testing.T) {
	rr, _ := dns.NewRR("x.other.test. 60 IN A 127.0.0.1")
	if err := (Change{Zone: "dsn.test.", Add: []dns.RR{rr}}).Validate(); err == nil || !strings.Contains(err.Error(), "outside zone") {
		t.Errorf("outside zone: %v", err)
	}
	if err := (Change{Zone: "dsn.test."}).Validate(); err == nil {
		t.Error("empty change accepted")
	}
	if err := (Change{Zone: "dsn.test.", Add: []dns.RR{nil}}).Validate(); err == nil {
		t.Error("nil record accepted")
	}
	if s := (Change{Zone: "z.", DeleteRRsets: []RRsetRef{{"a.z.", dns.TypeA}}}).String(); s != "zone z.: delete a.z. A" {
		t.Errorf("String = %q", s)
	}
}
