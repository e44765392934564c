package dnsreport

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const locateZone = `
$TTL 60
; NAPTR -> SRV -> A: TCP preferred over UDP by order
ims.test.            NAPTR 10 50 "s" "SIP+D2T" "" _sip._tcp.ims.test.
ims.test.            NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.ims.test.
ims.test.            NAPTR 5 50 "s" "SIPS+D2T" "" _sips._tcp.ims.test.
ims.test.            NAPTR 1 50 "u" "E2U+sip" "!^.*$!sip:x@y!" .
_sip._tcp.ims.test.  SRV 20 10 5071 cscf2.ims.test.
_sip._tcp.ims.test.  SRV 10 10 5070 cscf1.ims.test.
_sip._udp.ims.test.  SRV 10 10 5060 cscf1.ims.test.
_sips._tcp.ims.test. SRV 10 10 5061 cscf1.ims.test.
cscf1.ims.test.      A 127.0.0.11
cscf1.ims.test.      AAAA fd00::11
cscf2.ims.test.      A 127.0.0.12
; SRV only (no NAPTR), as a representative set is published
_sip._udp.dsn.test.  SRV 10 10 5062 n2.dsn.test.
_sip._udp.dsn.test.  SRV 10 10 5060 n1.dsn.test.
_sip._tcp.dsn.test.  SRV 10 10 5060 n1.dsn.test.
dsn.test.            A 127.0.0.21
n1.dsn.test.         A 127.0.0.21
n2.dsn.test.         A 127.0.0.22
; A only
plain.test.          A 127.0.0.31
; SRV saying "no service", and a target without address
_sip._udp.none.test. SRV 0 0 0 .
none.test.           A 127.0.0.41
_sip._udp.half.test. SRV 10 10 5060 ghost.half.test.
_sip._udp.half.test. SRV 20 10 5080 real.half.test.
real.half.test.      A 127.0.0.51
`

func TestLocate(t *testing.T) {
	tests := []struct {
		uri  string
		want []string
		err  error
	}{
		{"sip:bob@127.0.0.9", []string{"udp:127.0.0.9:5060"}, nil},
		{"sip:bob@[::1]:5070;transport=TCP", []string{"tcp:[::1]:5070"}, nil},
		{"sips:bob@127.0.0.9", []string{"tls:127.0.0.9:5061"}, nil},
		{"sip:bob@ims.test", []string{"tcp:127.0.0.11:5070", "tcp:[fd00::11]:5070", "tcp:127.0.0.12:5071", "udp:127.0.0.11:5060", "udp:[fd00::11]:5060"}, nil},
		{"sips:bob@ims.test", []string{"tls:127.0.0.11:5061", "tls:[fd00::11]:5061"}, nil},
		{"sip:bob@cscf2.ims.test:5999", []string{"udp:127.0.0.12:5999"}, nil},
		{"sip:bob@cscf2.ims.test:5999;transport=tcp", []string{"tcp:127.0.0.12:5999"}, nil},
		{"sip:bob@ims.test;transport=udp", []string{"udp:127.0.0.11:5060", "udp:[fd00::11]:5060"}, nil},
		{"sip:alice@dsn.test", []string{"udp:127.0.0.21:5060", "udp:127.0.0.22:5062", "tcp:127.0.0.21:5060"}, nil},
		{"sip:plain.test", []string{"udp:127.0.0.31:5060"}, nil},
		{"sip:x@none.test", []string{"udp:127.0.0.41:5060"}, nil},
		{"sip:x@half.test", []string{"udp:127.0.0.51:5080"}, nil},
		{"sip:x@other.test;maddr=127.0.0.61", []string{"udp:127.0.0.61:5060"}, nil},
		{"sip:x@nowhere.test", nil, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			r := newTestResolver(t, newMemDNS(t, locateZone))
			got, err := r.Locate(context.Background(), tt.uri)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, g := range got {
				s = append(s, g.String())
			}
			// Equal-priority SRV records are ordered randomly; compare
			// those groups as sets where the test data has them.
			if tt.uri == "sip:alice@dsn.test" {
				slices.Sort(s[:2])
			}
			if !slices.Equal(s, tt.want) {
				t.Errorf("Locate = %v\nwant     %v", s, tt.want)
			}
		})
	}
}

func TestLocateBadURI(t *testing.T) {
	r := newTestResolver(t, newMemDNS(t, locateZone))
	for _, uri := range []string{"tel:+123", "sip:", "sip:a@[::1", "sip:a@h:99999", "sip:a@h:x", "sip:a@h;transport=sctp", "sip:a@[::1]x"} {
		if _, err := r.Locate(context.Background(), uri); err == nil || !strings.HasPrefix(err.Error(), "dnsreport:") {
			t.Errorf("Locate(%q) err = %v", uri, err)
		}
	}
}

func TestLocateServerFailureIsAnError(t *testing.T) {
	mem := newMemDNS(t, locateZone)
	mem.fail["ims.test."] = &UpdateError{Server: "mem", Rcode: dns.RcodeServerFailure}
	r := newTestResolver(t, mem)
	_, err := r.Locate(context.Background(), "sip:bob@ims.test")
	if !errors.Is(err, ErrServFail) {
		t.Fatalf("err = %v, want ErrServFail", err)
	}
}

func TestOrderSRVPriorityAndWeight(t *testing.T) {
	mk := func(prio, weight uint16, target string) *dns.SRV {
		return &dns.SRV{Priority: prio, Weight: weight, Target: target}
	}
	in := []*dns.SRV{mk(20, 0, "p20"), mk(10, 0, "zero"), mk(10, 60, "heavy"), mk(10, 30, "light"), mk(5, 1, "p5")}
	orig := slices.Clone(in)
	rng := rand.New(rand.NewPCG(7, 7))
	first := map[string]int{}
	const runs = 3000
	for i := 0; i < runs; i++ {
		out := OrderSRV(in, rng)
		if len(out) != len(in) {
			t.Fatalf("lost records: %v", out)
		}
		if out[0].Target != "p5" || out[4].Target != "p20" {
			t.Fatalf("priority order broken: %v", targets(out))
		}
		first[out[1].Target]++
	}
	if !slices.Equal(in, orig) {
		t.Error("OrderSRV modified its input")
	}
	// Weights 60:30:0 -> the first pick of priority 10 is "heavy" about
	// 2/3 of the time, "light" 1/3, "zero" almost never (1/91).
	if h := float64(first["heavy"]) / runs; h < 0.6 || h > 0.73 {
		t.Errorf("heavy first %.2f of runs, want about 0.66 (%v)", h, first)
	}
	if l := float64(first["light"]) / runs; l < 0.27 || l > 0.4 {
		t.Errorf("light first %.2f of runs, want about 0.33 (%v)", l, first)
	}
	if z := first["zero"]; z > runs/30 {
		t.Errorf("zero-weight record first %d times", z)
	}
	// Same seed, same order.
	a := OrderSRV(in, rand.New(rand.NewPCG(1, 1)))
	b := OrderSRV(in, rand.New(rand.NewPCG(1, 1)))
	if !slices.Equal(targets(a), targets(b)) {
		t.Error("OrderSRV is not deterministic for a seed")
	}
}

func TestOrderSRVAllZeroWeights(t *testing.T) {
	in := []*dns.SRV{{Target: "a"}, {Target: "b"}, {Target: "c"}}
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		seen[OrderSRV(in, rng)[0].Target] = true
	}
	if len(seen) != 3 {
		t.Errorf("zero-weight records not all picked first sometimes: %v", seen)
	}
}

func targets(srvs []*dns.SRV) []string {
	var out []string
	for _, s := range srvs {
		out = append(out, s.Target)
	}
	return out
}

func TestNewResolverSystem(t *testing.T) {
	dir := t.TempDir()
	conf := dir + "/resolv.conf"
	writeFile(t, conf, "nameserver 127.0.0.53\nnameserver ::1\n")
	cfg := DefaultConfig().Resolver
	cfg.ResolvConf = conf
	r, err := NewResolver(cfg, nil, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.53:53", "[::1]:53"}; !slices.Equal(r.servers, want) {
		t.Errorf("servers = %v, want %v", r.servers, want)
	}
	writeFile(t, conf, "# nothing\n")
	if _, err := NewResolver(cfg, nil, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("empty resolv.conf accepted")
	}
}
