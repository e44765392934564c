package registrar

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestCanonicalAOR(t *testing.T) {
	cases := []struct{ in, want string }{
		{"sip:alice@dsn.test", "sip:alice@dsn.test"},
		{"sips:Alice@DSN.Test:5061;user=phone;transport=tls", "sip:Alice@dsn.test"},
		{"sip:alice:secret@dsn.test.", "sip:alice@dsn.test"},
		{"sip:%61lice@dsn.test", "sip:alice@dsn.test"},
		{"sip:a%20b@dsn.test", "sip:a%20b@dsn.test"},
		{"sip:+1555%2d0100@dsn.test?subject=x", "sip:+1555-0100@dsn.test"},
		{"sip:bob@[2001:DB8::1]:5060", "sip:bob@[2001:db8::1]"},
	}
	for _, c := range cases {
		got, err := CanonicalAOR(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalAOR(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		if again, err := CanonicalAOR(got); err != nil || again != got {
			t.Errorf("not idempotent: %q -> %q, %v", got, again, err)
		}
	}
	for _, bad := range []string{"tel:+15551234", "sip:dsn.test", "sip:a%zz@dsn.test", "*", "", "sip:" + string(make([]byte, MaxAORLen)) + "@d"} {
		if got, err := CanonicalAOR(bad); !errors.Is(err, ErrInvalidAOR) {
			t.Errorf("CanonicalAOR(%q) = %q, %v; want ErrInvalidAOR", bad, got, err)
		}
	}
}

func TestURIEqual(t *testing.T) {
	cases := []struct {
		a, b string
		eq   bool
	}{
		// RFC 3261 section 19.1.4 examples.
		{"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", true},
		{"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", true},
		{"sip:carol@chicago.com", "sip:carol@chicago.com;security=on", true},
		{"sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on", true},
		{"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", true},
		{"sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x", true},
		{"SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP", false},
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", false},
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", false},
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp", false},
		{"sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting", false},
		{"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4", false},
		{"sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off", false},
		{"sip:a@h", "sips:a@h", false},
		{"tel:+1555", "tel:+1555", true},
		{"tel:+1555", "tel:+1556", false},
	}
	for _, c := range cases {
		var a, b sip.Uri
		if err := sip.ParseUri(c.a, &a); err != nil {
			t.Fatalf("parse %q: %v", c.a, err)
		}
		if err := sip.ParseUri(c.b, &b); err != nil {
			t.Fatalf("parse %q: %v", c.b, err)
		}
		if got := uriEqual(&a, &b); got != c.eq {
			t.Errorf("uriEqual(%q, %q) = %v, want %v", c.a, c.b, got, c.eq)
		}
		if got := uriEqual(&b, &a); got != c.eq {
			t.Errorf("uriEqual(%q, %q) = %v, want %v (symmetry)", c.b, c.a, got, c.eq)
		}
	}
}

func TestParseQ(t *testing.T) {
	good := map[string]int{"0": 0, "0.": 0, "0.5": 500, "0.05": 50, "0.123": 123, "1": 1000, "1.0": 1000, "1.000": 1000}
	for s, want := range good {
		if got, ok := parseQ(s); !ok || got != want {
			t.Errorf("parseQ(%q) = %d, %v; want %d", s, got, ok, want)
		}
		if s != "0." && s != "1.0" && s != "1.000" && s != "0.05" {
			if back := formatQ(want); back != s {
				t.Errorf("formatQ(%d) = %q, want %q", want, back, s)
			}
		}
	}
	for _, s := range []string{"", "2", "1.5", "1.001", "0.1234", "-0.5", ".5", "0,5", "0.a", "01"} {
		if got, ok := parseQ(s); ok {
			t.Errorf("parseQ(%q) = %d, accepted", s, got)
		}
	}
	if formatQ(50) != "0.05" {
		t.Errorf("formatQ(50) = %q", formatQ(50))
	}
}

func TestNATTarget(t *testing.T) {
	src := Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")}
	cases := []struct {
		contact string
		src     Source
		nat     bool
	}{
		{"sip:alice@192.168.1.20:5060", src, true},
		{"sip:alice@203.0.113.5:40001", src, false},
		{"sip:alice@203.0.113.5", src, true}, // default port 5060 != 40001
		{"sip:alice@phone.example.com", src, false},
		{"sip:df7jal23@df7jal23ls0d.invalid;transport=ws", src, true},
		{"sip:alice@192.168.1.20", Source{}, false},
		{"tel:+1555", src, false},
	}
	for _, c := range cases {
		b := Binding{Contact: c.contact, Received: c.src}
		got, ok := b.NATTarget()
		if ok != c.nat || (ok && got != c.src) {
			t.Errorf("NATTarget(%s) = %v %v, want nat=%v", c.contact, got, ok, c.nat)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(`<sip:a;x=",">;p=1, "B, b" <sip:b>,  ,<sip:c>`)
	want := []string{`<sip:a;x=",">;p=1`, `"B, b" <sip:b>`, `<sip:c>`}
	if len(got) != len(want) {
		t.Fatalf("splitList = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("splitList = %q, want %q", got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	if err := DefaultConfig().Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("DefaultConfig without Domains: %v", err)
	}
	bad := map[string]func(*Config){
		"bad domain":           func(c *Config) { c.Domains = []string{"dsn test"} },
		"empty domain":         func(c *Config) { c.Domains = []string{""} },
		"min > default":        func(c *Config) { c.MinExpires, c.DefaultExpires = 300*time.Second, 120*time.Second },
		"min one hour":         func(c *Config) { c.MinExpires = time.Hour; c.DefaultExpires = time.Hour },
		"default > max":        func(c *Config) { c.MaxExpires = 1800 * time.Second },
		"fractional seconds":   func(c *Config) { c.MinExpires = 1500 * time.Millisecond },
		"zero contacts":        func(c *Config) { c.MaxContactsPerAOR = 0 },
		"contacts above codec": func(c *Config) { c.MaxContactsPerAOR = MaxBindings + 1 },
		"negative retries":     func(c *Config) { c.MaxConflictRetries = -1 },
		"negative linger":      func(c *Config) { c.RecordLinger = -time.Second },
		"zero request timeout": func(c *Config) { c.RequestTimeout = 0 },
		"zero retry-after":     func(c *Config) { c.RetryAfter = 0 },
	}
	for name, f := range bad {
		c := testConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(testConfig(), nil, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with nil store: %v", err)
	}
	ipv6 := testConfig()
	ipv6.Domains = []string{"[2001:db8::1]", "2001:db8::2"}
	if err := ipv6.Validate(); err != nil {
		t.Errorf("IPv6 domains: %v", err)
	}
}
