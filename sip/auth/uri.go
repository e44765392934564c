package auth

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// uriMatches reports whether the digest-uri names the Request-URI (RFC
// 2617 section 3.2.2.5): same scheme, user, host (case-insensitively) and
// port. URI parameters are not compared, since clients such as sipgo
// send the bare address. An unparsable digest-uri must equal the
// Request-URI's text.
func uriMatches(digestURI string, ruri *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return digestURI == ruri.String()
	}
	scheme := func(s string) string {
		if s == "" {
			return "sip"
		}
		return strings.ToLower(s)
	}
	uUser, err1 := url.PathUnescape(u.User)
	rUser, err2 := url.PathUnescape(ruri.User)
	return scheme(u.Scheme) == scheme(ruri.Scheme) && err1 == nil && err2 == nil && uUser == rUser &&
		normalizeHost(u.Host) == normalizeHost(ruri.Host) && u.Port == ruri.Port
}

// normalizeHost lower-cases a host, drops a trailing dot and writes IPv6
// literals in canonical bracketed form, as the registrar does for AORs.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if strings.Contains(h, ":") {
		if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			return "[" + ip.String() + "]"
		}
	}
	return h
}
