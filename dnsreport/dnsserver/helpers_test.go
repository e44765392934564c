package dnsserver

import (
	"encoding/base64"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const dsnZone = `$ORIGIN dsn.example.com.
$TTL 300
@         IN SOA   ns1 hostmaster 10 3600 600 86400 60
@         IN NS    ns1
@         IN NS    ns2
ns1       IN A     192.0.2.53
ns2       IN A     192.0.2.54
@         IN A     192.0.2.10
@         IN AAAA  2001:db8::10
@         IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp
node1     IN A     192.0.2.1
node2     IN A     192.0.2.2
node2     IN A     192.0.2.3
_sip._udp IN SRV   10 50 5060 node1
_sip._tcp IN SRV   10 50 5060 node1
txt       IN TXT   "hello" "world"
alias     IN CNAME node1
ext       IN CNAME sip.other.example.
loop1     IN CNAME loop2
loop2     IN CNAME loop1
*.wild    IN TXT   "wild"
exists.wild IN A   192.0.2.7
a.b.ent   IN A     192.0.2.8
sub       IN NS    ns.sub
ns.sub    IN A     192.0.2.99
`

const enumZone = `$ORIGIN e164.arpa.
$TTL 300
@             IN SOA   ns1.dsn.example.com. hostmaster.dsn.example.com. 1 3600 600 86400 120
@             IN NS    ns1.dsn.example.com.
*.4.3.2.1     IN NAPTR 10 100 "u" "E2U+sip" "!^\\+1234(.*)$!sip:\\1@dsn.example.com!" .
*.5.4.3.2.1   IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:special@dsn.example.com!" .
8.7.6.4.3.2.1 IN NAPTR 10 100 "u" "E2U+sip" "!^.*$!sip:alice@dsn.example.com!" .
`

const reverseZone = `$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@ IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 1 3600 600 86400 300
@ IN NS  ns1.dsn.example.com.
1 IN PTR node1.dsn.example.com.
`

const innerZone = `$ORIGIN inner.dsn.example.com.
@ 300 IN SOA ns1.dsn.example.com. hostmaster.dsn.example.com. 1 3600 600 86400 300
@ 300 IN NS  ns1.dsn.example.com.
x 300 IN A   192.0.2.200
`

// Test keys, one per supported algorithm.
var (
	keySHA256 = Key{Name: "update-key.", Algorithm: dns.HmacSHA256, Secret: secret("sha256-secret")}
	keySHA1   = Key{Name: "sha1-key.", Algorithm: "hmac-sha1", Secret: secret("sha1-secret")}
	keySHA384 = Key{Name: "sha384-key.", Algorithm: dns.HmacSHA384, Secret: secret("sha384-secret")}
	keySHA512 = Key{Name: "sha512-key.", Algorithm: "HMAC-SHA512", Secret: secret("sha512-secret")}
)

func secret(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Zones = []ZoneConfig{
		{Origin: "dsn.example.com.", Text: dsnZone},
		{Origin: "e164.arpa", Text: enumZone},
		{Origin: "2.0.192.in-addr.arpa.", Text: reverseZone},
		{Origin: "inner.dsn.example.com.", Text: innerZone},
	}
	cfg.Keys = []Key{keySHA256, keySHA1, keySHA384, keySHA512}
	cfg.AllowAXFR = true
	return cfg
}

func newHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	now := time.Now() // a fixed, injected clock
	h, err := New(cfg, nil, func() time.Time { return now })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// signer describes how a test signs its request.
type signer struct {
	key  *Key      // nil: unsigned
	at   time.Time // zero: now
	name string    // overrides key.Name on the wire
	alg  string    // overrides key.Algorithm on the wire
}

func signedWith(k Key) signer { return signer{key: &k} }

// roundTrip is the in-memory transport: it packs (and signs) m as a client
// would, decodes and verifies it as miekg's server does, calls Handle, packs
// and signs the replies as dns.ResponseWriter.WriteMsg does, and decodes
// and verifies them as a client would. verr holds the client-side
// verification error of each signed reply.
type roundTrip struct {
	replies []*dns.Msg
	verr    []error
}

func exchange(t testing.TB, h *Handler, m *dns.Msg, s signer, tcp bool) roundTrip {
	t.Helper()
	var wire []byte
	var reqMAC, clientSecret string
	var err error
	if s.key != nil {
		alg, _ := canonicalAlgorithm(s.key.Algorithm)
		name := s.key.Name
		if s.alg != "" {
			alg = s.alg
		}
		if s.name != "" {
			name = s.name
		}
		at := s.at
		if at.IsZero() {
			at = time.Now()
		}
		m.SetTsig(name, alg, 300, at.Unix())
		clientSecret = s.key.Secret
		wire, reqMAC, err = dns.TsigGenerate(m, clientSecret, "", false)
	} else {
		wire, err = m.Pack()
	}
	if err != nil {
		t.Fatalf("pack request: %v", err)
	}

	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil {
		t.Fatalf("unpack request: %v", err)
	}
	var status error
	if req.IsTsig() != nil {
		status = dns.TsigVerifyWithProvider(append([]byte(nil), wire...), h.TsigProvider(), "", false)
	}
	var rt roundTrip
	serverMAC := req.IsTsig()
	prev := ""
	if serverMAC != nil {
		prev = serverMAC.MAC
	}
	for i, r := range h.Handle(Request{Msg: req, TSIGStatus: status, TCP: tcp}) {
		var out []byte
		if r.IsTsig() != nil {
			out, prev, err = dns.TsigGenerateWithProvider(r, h.TsigProvider(), prev, i > 0)
		} else {
			out, err = r.Pack()
		}
		if err != nil {
			t.Fatalf("pack reply %d: %v", i, err)
		}
		if !tcp && len(out) > udpLimit(req) {
			t.Fatalf("UDP reply of %d bytes exceeds the client's %d", len(out), udpLimit(req))
		}
		back := new(dns.Msg)
		if err := back.Unpack(out); err != nil {
			t.Fatalf("unpack reply %d: %v", i, err)
		}
		var verr error
		if back.IsTsig() != nil && clientSecret != "" {
			verr = dns.TsigVerify(out, clientSecret, reqMAC, i > 0)
			reqMAC = back.IsTsig().MAC
		}
		rt.replies = append(rt.replies, back)
		rt.verr = append(rt.verr, verr)
	}
	return rt
}

// rcodeCase is a request and the rcode it must get.
type rcodeCase struct {
	name  string
	m     *dns.Msg
	rcode int
}

// checkRcodes runs each case over UDP; an error reply carries no answer.
func checkRcodes(t *testing.T, h *Handler, s signer, cases []rcodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, h, tc.m, s, false).one(t)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		})
	}
}

// one returns the single reply of a round trip.
func (rt roundTrip) one(t testing.TB) *dns.Msg {
	t.Helper()
	if len(rt.replies) != 1 {
		t.Fatalf("got %d replies, want 1", len(rt.replies))
	}
	return rt.replies[0]
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil || rr == nil {
		t.Fatalf("bad test RR %q: %v", s, err)
	}
	return rr
}

func mustRRs(t testing.TB, ss ...string) []dns.RR {
	t.Helper()
	out := make([]dns.RR, len(ss))
	for i, s := range ss {
		out[i] = mustRR(t, s)
	}
	return out
}

// rrStrings renders records for comparison, sorted, with a normalised
// presentation (parsed and printed again) so tests can write them loosely.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT || rr.Header().Rrtype == dns.TypeTSIG {
			continue
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func normalize(t testing.TB, ss []string) []string {
	t.Helper()
	return rrStrings(mustRRs(t, ss...))
}

func sameStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "rcode?"
}
