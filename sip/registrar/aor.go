package registrar

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// MaxAORLen bounds a canonical address-of-record; it is the storage key.
const MaxAORLen = 512

// CanonicalAOR returns the canonical form of an address-of-record given as
// URI text, e.g. "sips:Alice@Example.COM:5061;user=phone" ->
// "sip:Alice@example.com". The proxy canonicalises a Request-URI with it
// before Lookup. See canonicalAOR for the rules.
func CanonicalAOR(uri string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(strings.TrimSpace(uri), &u); err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidAOR, uri, err)
	}
	aor, _, err := canonicalAOR(&u)
	return aor, err
}

// canonicalAOR implements RFC 3261 section 10.3 step 5: "all URI parameters
// MUST be removed (including the user-param), and any escaped characters
// MUST be converted to their unescaped form". Beyond that:
//   - the host is lower-cased (hosts compare case-insensitively, 19.1.4)
//     and a trailing dot is dropped;
//   - port, password and URI headers are dropped: an AOR names a user in a
//     domain, not a transport endpoint;
//   - the scheme is always "sip": sip: and sips: forms of one user@host are
//     the same resource, SIPS only asks for secure delivery (RFC 5630), so
//     one record holds both and each Contact keeps its own scheme;
//   - the user part is case-sensitive and kept; after unescaping, only the
//     characters that must be escaped are escaped again, so the result is
//     itself canonical (CanonicalAOR is idempotent).
//
// It returns the AOR and its normalised host.
func canonicalAOR(u *sip.Uri) (aor, host string, err error) {
	if !isSIPScheme(u.Scheme) {
		return "", "", fmt.Errorf("%w: scheme %q is not sip or sips", ErrInvalidAOR, u.Scheme)
	}
	if u.Wildcard {
		return "", "", fmt.Errorf("%w: wildcard", ErrInvalidAOR)
	}
	host = normalizeHost(u.Host)
	if host == "" {
		return "", "", fmt.Errorf("%w: no host", ErrInvalidAOR)
	}
	if u.User == "" {
		return "", "", fmt.Errorf("%w: no user part", ErrInvalidAOR)
	}
	user, err := url.PathUnescape(u.User)
	if err != nil {
		return "", "", fmt.Errorf("%w: user part %q: %v", ErrInvalidAOR, u.User, err)
	}
	aor = "sip:" + escapeUser(user) + "@" + host
	if len(aor) > MaxAORLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidAOR, MaxAORLen)
	}
	return aor, host, nil
}

// isSIPScheme reports whether a parsed URI is a SIP or SIPS URI; sipgo
// leaves the scheme empty in URIs built in code and writes them as sip:.
func isSIPScheme(scheme string) bool {
	return scheme == "sip" || scheme == "sips" || scheme == ""
}

// escapeUser escapes every byte that is not allowed unescaped in the user
// part of a SIP URI (RFC 3261 section 25.1: unreserved / user-unreserved),
// and ";" and ":" too so the result never reads as parameters or password.
func escapeUser(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if userSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

func userSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()&=+$,?/", c) >= 0
}

// normalizeHost lower-cases a host, drops a trailing dot and writes IPv6
// literals in their canonical bracketed form. It returns "" for no host.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(h, ".")
	if strings.Contains(h, ":") {
		ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
		if err != nil {
			return ""
		}
		return "[" + ip.String() + "]"
	}
	return h
}

// validDomain reports whether d is usable in Config.Domains: a host name or
// an IP literal, nothing else.
func validDomain(d string) bool {
	h := normalizeHost(d)
	if h == "" {
		return false
	}
	if strings.HasPrefix(h, "[") {
		return true
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
