package dnsreport

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestENUMName(t *testing.T) {
	tests := []struct{ in, suffix, want, err string }{
		{"+1 234", "", "4.3.2.1.e164.arpa.", ""},
		{"+49 (30) 123-45.6", "e164.arpa", "6.5.4.3.2.1.0.3.9.4.e164.arpa.", ""},
		{"4930", "E164.DSN.Test.", "0.3.9.4.e164.dsn.test.", ""},
		{"+", "", "", "no digits"},
		{"+49x", "", "", "unexpected character"},
		{"1+2", "", "", "unexpected character"},
		{"+1234567890123456", "", "", "more than 15 digits"},
	}
	for _, tt := range tests {
		got, err := ENUMName(tt.in, tt.suffix)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ENUMName(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ENUMName(%q, %q) = %q, %v; want %q", tt.in, tt.suffix, got, err, tt.want)
		}
	}
}

func TestSubstitution(t *testing.T) {
	const aus = "+4930123456"
	tests := []struct {
		name, expr, want string
		nomatch          bool
		err              string
	}{
		{"whole string", `!^.*$!sip:alice@dsn.test!`, "sip:alice@dsn.test", false, ""},
		{"back-reference", `!^\+49(.*)$!sip:\1@dsn.test!`, "sip:30123456@dsn.test", false, ""},
		{"two back-references", `!^\+(49)(30)(.*)$!sip:\3@\2.\1.example!`, "sip:123456@30.49.example", false, ""},
		{"other delimiter", `/^\+(.*)$/sip:\1@ims.test/`, "sip:4930123456@ims.test", false, ""},
		{"letter delimiter", `x^\+(.*)$xsip:\1@ims.testx`, "sip:4930123456@ims.test", false, ""},
		{"escaped delimiter in replacement", `!^.*$!sip:a\!b@x!`, "sip:a!b@x", false, ""},
		{"escaped delimiter in ERE", `/^\+49\/?(.*)$/sip:\1@x/`, "sip:30123456@x", false, ""},
		{"escaped backslash", `!^.*$!sip:a\\1@x!`, `sip:a\1@x`, false, ""},
		{"case-insensitive flag", `!^\+49(.*)$!SIP:\1@X!i`, "SIP:30123456@X", false, ""},
		{"sed semantics keep unmatched tail", `!^\+49!sip:!`, "sip:30123456", false, ""},
		{"unused group is empty", `!^\+49(9)?(.*)$!sip:\1\2@x!`, "sip:30123456@x", false, ""},
		{"no match", `!^\+33(.*)$!sip:\1@fr!`, "", true, ""},
		{"digit delimiter", `1^.*$1sip:x1`, "", false, "cannot be a delimiter"},
		{"too few parts", `!^.*$!sip:x`, "", false, "want delim"},
		{"bad flag", `!^.*$!sip:x!g`, "", false, "unknown flags"},
		{"bad ERE", `!^(.*$!sip:x!`, "", false, "regexp"},
		{"empty", ``, "", false, "empty regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := parseSubstitution(tt.expr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, ok := sub.apply(aus)
			if ok == tt.nomatch || got != tt.want {
				t.Errorf("apply = %q, %v; want %q, %v", got, ok, tt.want, !tt.nomatch)
			}
		})
	}
}

func TestENUMService(t *testing.T) {
	for s, want := range map[string]bool{
		"E2U+sip": true, "E2U+SIP": true, "e2u+sip": true, "E2U+voice:sip+sip": true,
		"E2U+sip:foo": true, "E2U+email:mailto": false, "SIP+D2U": false, "E2U": false, "": false,
	} {
		if got := enumServiceHasSIP(s); got != want {
			t.Errorf("enumServiceHasSIP(%q) = %v", s, got)
		}
	}
}

func TestCharStringEscaping(t *testing.T) {
	for _, s := range []string{`!^\+49(.*)$!sip:\1@x!`, `a"b`, "tab\there", ""} {
		if got := unescapeCharString(escapeCharString(s)); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	// What miekg makes of zone-file text.
	rr, err := dns.NewRR(`n. NAPTR 100 10 "u" "E2U+sip" "!^\\+49(.*)$!sip:\\1@x!" .`)
	if err != nil {
		t.Fatal(err)
	}
	if got := unescapeCharString(rr.(*dns.NAPTR).Regexp); got != `!^\+49(.*)$!sip:\1@x!` {
		t.Errorf("unescaped regexp = %q", got)
	}
}

const enumZone = `
$TTL 60
; a single number
6.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:alice@dsn.test!" .
; order beats preference; non-SIP services and bad records are skipped
7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 10 20 "u" "E2U+sip" "!^.*$!sip:second@dsn.test!" .
7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:first@dsn.test!" .
7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 5 10 "u" "E2U+email:mailto" "!^.*$!mailto:x@y!" .
7.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 200 10 "u" "E2U+sip" "!^.*$!sip:last@dsn.test!" .
8.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 10 10 "u" "E2U+sip" "!^\\+33(.*)$!sip:\\1@fr!" .
8.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 20 10 "u" "E2U+sip" "!^.*$!http://not-sip!" .
8.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 30 10 "u" "E2U+SIP" "/^\\+(49)(.*)$/sip:\\2@\\1.dsn.test/" .
; a number prefix, upper-case service and another delimiter
*.8.8.8.1.e164.arpa. NAPTR 100 10 "u" "E2U+SIP" "/^\\+(1888.*)$/sip:\\1@ims.test/" .
; a non-terminal record and a loop
9.5.4.3.2.1.0.3.9.4.e164.arpa. NAPTR 100 10 "" "E2U" "" alias.enum.test.
alias.enum.test. NAPTR 100 10 "u" "E2U+sip" "!^\\+(.*)$!sip:\\1@alias.test!" .
loop.enum.test. NAPTR 100 10 "" "" "" loop.enum.test.
1.1.1.1.e164.arpa. NAPTR 100 10 "" "" "" loop.enum.test.
2.2.2.2.e164.arpa. NAPTR 100 10 "u" "E2U+email" "!^.*$!mailto:x@y!" .
`

func TestResolverENUM(t *testing.T) {
	mem := newMemDNS(t, enumZone)
	r := newTestResolver(t, mem)
	tests := []struct{ number, want string }{
		{"+4930123456", "sip:alice@dsn.test"},
		{"+49 30 123457", "sip:first@dsn.test"},
		{"+4930123458", "sip:30123458@49.dsn.test"},
		{"+18885551234", "sip:18885551234@ims.test"},
		{"+1888", ""}, // the wildcard covers longer numbers only
		{"+4930123459", "sip:4930123459@alias.test"},
		{"+1111", ""},
		{"+2222", ""},
		{"+999", ""},
	}
	for _, tt := range tests {
		got, err := r.ENUM(context.Background(), tt.number)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("ENUM(%s) = %q, %v; want ErrNotFound", tt.number, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ENUM(%s) = %q, %v; want %q", tt.number, got, err, tt.want)
		}
	}
	if _, err := r.ENUM(context.Background(), "call me"); err == nil {
		t.Error("ENUM accepted a non-number")
	}
}

func TestENUMRecordsResolve(t *testing.T) {
	one, err := ENUMRecord("+49 30 1", "sip:bob@dsn.test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := ENUMPrefixRecord("+4940", "dsn.test.", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if prefix.Header().Name != "*.0.4.9.4.e164.arpa." || one.Header().Name != "1.0.3.9.4.e164.arpa." {
		t.Fatalf("owners %s %s", one.Header().Name, prefix.Header().Name)
	}
	mem := newMemDNS(t, one.String()+"\n"+prefix.String()+"\n")
	r := newTestResolver(t, mem)
	for number, want := range map[string]string{"+49301": "sip:bob@dsn.test", "+49401234": "sip:+49401234@dsn.test"} {
		if got, err := r.ENUM(context.Background(), number); err != nil || got != want {
			t.Errorf("ENUM(%s) = %q, %v; want %q", number, got, err, want)
		}
	}
	if _, err := ENUMRecord("+1", "mailto:x@y", "", time.Minute); err == nil {
		t.Error("ENUMRecord accepted a non-SIP URI")
	}
}

func newTestResolver(t *testing.T, ex Exchanger) *DNSResolver {
	t.Helper()
	cfg := DefaultConfig().Resolver
	cfg.Server = "127.0.0.1:53" // never dialled: ex is in memory
	r, err := NewResolver(cfg, ex, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
