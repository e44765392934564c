package dnsserver

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

func TestParseZone(t *testing.T) {
	const head = "$ORIGIN z.example.\n$TTL 60\n@ IN SOA ns h 1 1 1 1 1\n@ IN NS ns\n"
	tests := []struct {
		name string
		text string
		err  error  // sentinel, or nil
		msg  string // substring, when no sentinel
	}{
		{name: "minimal", text: head},
		{name: "duplicates are merged", text: head + "a IN A 192.0.2.1\na IN A 192.0.2.1\n"},
		{name: "no SOA", text: "$ORIGIN z.example.\n@ 60 IN NS ns\n", err: ErrNoSOA},
		{name: "no NS", text: "$ORIGIN z.example.\n@ 60 IN SOA ns h 1 1 1 1 1\n", err: ErrNoNS},
		{name: "second SOA", text: head + "@ IN SOA ns2 h 2 1 1 1 1\n", err: ErrSecondSOA},
		{name: "SOA below the apex", text: head + "a IN SOA ns h 1 1 1 1 1\n", err: ErrOutOfZone},
		{name: "record outside the zone", text: head + "www.example.org. IN A 192.0.2.1\n", err: ErrOutOfZone},
		{name: "CNAME after data", text: head + "a IN A 192.0.2.1\na IN CNAME b\n", err: ErrCNAMEConflict},
		{name: "data after CNAME", text: head + "a IN CNAME b\na IN A 192.0.2.1\n", err: ErrCNAMEConflict},
		{name: "two CNAMEs", text: head + "a IN CNAME b\na IN CNAME c\n", err: ErrCNAMEConflict},
		{name: "class CH", text: head + "a CH A 192.0.2.1\n", msg: "only IN is served"},
		{name: "$INCLUDE is refused", text: head + "$INCLUDE /etc/passwd\n", msg: "$INCLUDE directive not allowed"},
		{name: "syntax error", text: head + "a IN A not-an-address\n", msg: "dnsserver: zone z.example.:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseZoneString("Z.example", tc.text)
			switch {
			case tc.err == nil && tc.msg == "":
				if err != nil {
					t.Fatalf("ParseZone: %v", err)
				}
				if z.Origin() != "z.example." || z.Serial() != 1 {
					t.Errorf("origin %q serial %d", z.Origin(), z.Serial())
				}
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("err = %v, want %v", err, tc.err)
			case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
				t.Errorf("err = %v, want it to mention %q", err, tc.msg)
			}
		})
	}
	if _, err := ParseZoneString("", "x"); err == nil {
		t.Error("empty origin accepted")
	}
}

func TestZoneRecordsAndLookup(t *testing.T) {
	z, err := ParseZoneString("dsn.example.com.", dsnZone)
	if err != nil {
		t.Fatal(err)
	}
	recs := z.Records()
	if recs[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("first record %v, want the SOA", recs[0])
	}
	if got := len(recs); got != 23 {
		t.Errorf("%d records, want 23", got)
	}
	// Copies: changing them does not change the zone.
	recs[1].Header().Ttl = 1
	if z.Records()[1].Header().Ttl == 1 {
		t.Error("Records returned the zone's own records")
	}
	if got := z.Lookup("NODE2.dsn.example.com", dns.TypeA); len(got) != 2 {
		t.Errorf("Lookup A = %v", got)
	}
	if got := z.Lookup("dsn.example.com.", dns.TypeANY); len(got) != 6 {
		t.Errorf("Lookup ANY at apex = %d records, want 6", len(got))
	}
	if !z.exists("b.ent.dsn.example.com.") || z.inUse("b.ent.dsn.example.com.") {
		t.Error("b.ent should be an empty non-terminal")
	}
}

func TestStore(t *testing.T) {
	a, _ := ParseZoneString("a.example.", "@ 60 IN SOA ns h 7 1 1 1 1\n@ 60 IN NS ns\n")
	b, _ := ParseZoneString("a.example.", "@ 60 IN SOA ns h 7 1 1 1 1\n@ 60 IN NS ns\n")
	if _, err := NewStore(a, b); !errors.Is(err, ErrDuplicateZone) {
		t.Errorf("duplicate zone: %v", err)
	}
	s, err := NewStore(a)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Origins(); len(got) != 1 || got[0] != "a.example." {
		t.Errorf("Origins = %v", got)
	}
	if serial, err := s.Serial("A.EXAMPLE"); err != nil || serial != 7 {
		t.Errorf("Serial = %d, %v", serial, err)
	}
	if _, err := s.Serial("b.example."); !errors.Is(err, ErrNoZone) {
		t.Errorf("Serial of unknown zone: %v", err)
	}
	if _, err := s.Records("b.example."); !errors.Is(err, ErrNoZone) {
		t.Errorf("Records of unknown zone: %v", err)
	}
	if got := s.Lookup("www.example.org.", dns.TypeA); got != nil {
		t.Errorf("Lookup outside the zones = %v", got)
	}
}

func TestRootZone(t *testing.T) {
	z, err := ParseZoneString(".", ". 60 IN SOA ns.root. h.root. 1 1 1 1 1\n. 60 IN NS ns.root.\nns.root. 60 IN A 192.0.2.1\n")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewStore(z)
	if a := s.query("NS.Root.", dns.TypeA); len(a.answer) != 1 {
		t.Errorf("root zone answer %v", a.answer)
	}
	if a := s.query("nothing.", dns.TypeA); a.rcode != dns.RcodeNameError {
		t.Errorf("root zone NXDOMAIN: %s", rcodeName(a.rcode))
	}
}
