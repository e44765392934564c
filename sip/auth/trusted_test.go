package auth

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	tr, err := ParseTrusted(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::1,, ::ffff:198.51.100.0/120, 10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.String(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32,::1/128,198.51.100.0/24"; got != want {
		t.Fatalf("String = %s, want %s", got, want)
	}
	if tr.Len() != 5 || len(tr.Prefixes()) != 5 {
		t.Fatalf("Len %d", tr.Len())
	}
	for addr, want := range map[string]bool{
		"10.1.2.3":         true,
		"11.0.0.1":         false,
		"192.0.2.7":        true,
		"192.0.2.8":        false,
		"2001:db8:1::5":    true,
		"2001:db9::1":      false,
		"::1":              true,
		"::2":              false,
		"::ffff:10.9.9.9":  true, // mapped matches IPv4
		"198.51.100.200":   true, // from the mapped entry
		"fe80::1%eth0":     false,
		"::ffff:192.0.2.7": true,
		"2001:db8::1%eth0": true, // zone ignored
	} {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Contains(a); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if tr.Contains(netip.Addr{}) {
		t.Error("zero address trusted")
	}

	var nilT *Trusted
	if nilT.Contains(netip.MustParseAddr("10.0.0.1")) || nilT.Len() != 0 || nilT.String() != "" || nilT.Prefixes() != nil {
		t.Error("nil Trusted is not empty")
	}
	empty, err := ParseTrusted("  ")
	if err != nil || empty.Len() != 0 {
		t.Fatalf("empty list: %v %v", empty, err)
	}

	for in, msg := range map[string]string{
		"10.0.0.1/8":        "host bits set (did you mean 10.0.0.0/8",
		"0.0.0.0/0":         "use -auth-open",
		"::/0":              "use -auth-open",
		"example.com":       "not an IP address",
		"10.0.0.0/33":       "not an IP address",
		"fe80::1%eth0":      "zoned",
		"::ffff:0.0.0.0/96": "use -auth-open",
		"::ffff:0.0.0.0/8":  "host bits set",
		"10.0.0.0/8,bad":    `"bad"`,
	} {
		_, err := ParseTrusted(in)
		if !errors.Is(err, ErrTrusted) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTrusted(%q): err %v, want ErrTrusted with %q", in, err, msg)
		}
	}
}
