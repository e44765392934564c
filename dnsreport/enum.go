package dnsreport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultENUMSuffix is the public ENUM tree (RFC 6116).
const DefaultENUMSuffix = "e164.arpa."

// NormalizeE164 strips visual separators (space, '-', '.', '(', ')') from a
// telephone number and returns "+digits" (RFC 6116 section 2.4: the
// Application Unique String). A leading '+' is optional on input.
func NormalizeE164(number string) (string, error) {
	var b strings.Builder
	b.WriteByte('+')
	for i, r := range strings.TrimSpace(number) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("dnsreport: telephone number %q: unexpected character %q", number, r)
		}
	}
	n := b.String()
	if len(n) < 2 {
		return "", fmt.Errorf("dnsreport: telephone number %q has no digits", number)
	}
	if len(n) > 16 {
		return "", fmt.Errorf("dnsreport: telephone number %q has more than 15 digits (E.164 limit)", number)
	}
	return n, nil
}

// ENUMName maps a number (or a number prefix) to its ENUM domain:
// "+1 234" under "e164.arpa." gives "4.3.2.1.e164.arpa.".
func ENUMName(number, suffix string) (string, error) {
	n, err := NormalizeE164(number)
	if err != nil {
		return "", err
	}
	digits := n[1:]
	var b strings.Builder
	for i := len(digits) - 1; i >= 0; i-- {
		b.WriteByte(digits[i])
		b.WriteByte('.')
	}
	if suffix == "" {
		suffix = DefaultENUMSuffix
	}
	return dns.CanonicalName(b.String() + dns.Fqdn(suffix)), nil
}

// ENUMRecord is the NAPTR that maps exactly one number to a SIP URI.
func ENUMRecord(number, uri, suffix string, ttl time.Duration) (*dns.NAPTR, error) {
	name, err := ENUMName(number, suffix)
	if err != nil {
		return nil, err
	}
	if !isSIPURI(uri) {
		return nil, fmt.Errorf("dnsreport: ENUM target %q is not a sip: or sips: URI", uri)
	}
	return enumNAPTR(name, "!^.*$!"+escapeRepl(uri, '!')+"!", ttl), nil
}

// ENUMPrefixRecord is the wildcard NAPTR that sends every number starting
// with prefix to the SIP domain: "+<number>" becomes sip:+<number>@domain.
// (A DNS wildcard matches longer numbers, not the prefix itself.)
func ENUMPrefixRecord(prefix, domain, suffix string, ttl time.Duration) (*dns.NAPTR, error) {
	name, err := ENUMName(prefix, suffix)
	if err != nil {
		return nil, err
	}
	if _, ok := dns.IsDomainName(domain); !ok || domain == "" {
		return nil, fmt.Errorf("dnsreport: ENUM prefix target %q is not a domain name", domain)
	}
	host := strings.TrimSuffix(domain, ".")
	return enumNAPTR("*."+name, `!^(.*)$!sip:\1@`+escapeRepl(host, '!')+"!", ttl), nil
}

func enumNAPTR(name, wireRegexp string, ttl time.Duration) *dns.NAPTR {
	return &dns.NAPTR{
		Hdr:   dns.RR_Header{Name: name, Rrtype: dns.TypeNAPTR, Class: dns.ClassINET, Ttl: uint32(ttl / time.Second)},
		Order: 100, Preference: 10, Flags: "u", Service: "E2U+sip",
		Regexp: escapeCharString(wireRegexp), Replacement: ".",
	}
}

func isSIPURI(s string) bool {
	l := strings.ToLower(s)
	return (strings.HasPrefix(l, "sip:") && len(l) > 4) || (strings.HasPrefix(l, "sips:") && len(l) > 5)
}

// escapeRepl escapes backslashes and the delimiter in literal replacement
// text.
func escapeRepl(s string, delim byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == delim {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escapeCharString turns wire bytes into miekg's presentation form of a
// <character-string> (the form NAPTR.Regexp holds).
func escapeCharString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeCharString undoes miekg's presentation escaping (\\, \", \DDD)
// to get the bytes that were on the wire.
func unescapeCharString(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v, err := strconv.Atoi(s[i+1 : i+4]); err == nil && v < 256 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		i++
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// substitution is a parsed RFC 3402 substitution expression
// (delim ERE delim repl delim flags).
type substitution struct {
	re   *regexp.Regexp
	repl string // with backslash escapes still in place
}

// parseSubstitution parses the wire form of a NAPTR regexp field.
func parseSubstitution(expr string) (*substitution, error) {
	if expr == "" {
		return nil, fmt.Errorf("empty regexp")
	}
	delim := expr[0]
	if isDigit(delim) || delim == '\\' || delim == 'i' || delim == 0 {
		return nil, fmt.Errorf("regexp %q: %q cannot be a delimiter", expr, delim)
	}
	var parts []string
	var cur strings.Builder
	for i := 1; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == '\\' && i+1 < len(expr) && expr[i+1] == delim:
			// An escaped delimiter is the literal character.
			if len(parts) == 0 {
				cur.WriteString(regexp.QuoteMeta(string(delim)))
			} else {
				cur.WriteString(`\` + string(delim))
			}
			i++
		case c == '\\' && i+1 < len(expr):
			cur.WriteByte(c)
			cur.WriteByte(expr[i+1])
			i++
		case c == delim:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("regexp %q: want delim ERE delim replacement delim [i]", expr)
	}
	flags := cur.String()
	if flags != "" && flags != "i" {
		return nil, fmt.Errorf("regexp %q: unknown flags %q (only \"i\")", expr, flags)
	}
	ere := parts[0]
	if flags == "i" {
		ere = "(?i)" + ere
	}
	re, err := regexp.CompilePOSIX(ere)
	if err != nil {
		if re, err = regexp.Compile(ere); err != nil {
			return nil, fmt.Errorf("regexp %q: %v", expr, err)
		}
	}
	return &substitution{re: re, repl: parts[1]}, nil
}

// apply rewrites s like sed's s///: the first match is replaced by the
// replacement with \1..\9 expanded. ok is false when the ERE does not match.
func (s *substitution) apply(str string) (string, bool) {
	loc := s.re.FindStringSubmatchIndex(str)
	if loc == nil {
		return "", false
	}
	var b strings.Builder
	b.WriteString(str[:loc[0]])
	for i := 0; i < len(s.repl); i++ {
		c := s.repl[i]
		if c != '\\' || i+1 >= len(s.repl) {
			b.WriteByte(c)
			continue
		}
		i++
		n := s.repl[i]
		if n >= '1' && n <= '9' {
			g := int(n - '0')
			if 2*g+1 < len(loc) && loc[2*g] >= 0 {
				b.WriteString(str[loc[2*g]:loc[2*g+1]])
			}
			continue
		}
		b.WriteByte(n)
	}
	b.WriteString(str[loc[1]:])
	return b.String(), true
}

// enumServiceHasSIP reports whether an ENUM service field ("E2U+sip",
// "E2U+voice:sip+sip", any case) offers the sip enumservice.
func enumServiceHasSIP(service string) bool {
	parts := strings.Split(strings.ToLower(service), "+")
	if len(parts) < 2 || parts[0] != "e2u" {
		return false
	}
	for _, p := range parts[1:] {
		if typ, _, _ := strings.Cut(p, ":"); typ == "sip" {
			return true
		}
	}
	return false
}
