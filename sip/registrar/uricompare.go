package registrar

import (
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// uriEqual compares two Contact URIs with the rules of RFC 3261 section
// 19.1.4, which section 10.3 step 7 uses to find an existing binding:
//   - sip and sips URIs are never equal to each other;
//   - the user part (and password) compare case-sensitively, the host
//     case-insensitively, escaped characters equal their unescaped form;
//   - a port, transport, user, ttl, method or maddr parameter present in
//     one URI must be present and equal in the other (an absent port is not
//     the default port);
//   - other parameters are compared only if present in both (names and
//     values case-insensitively);
//   - URI headers must be present and equal in both.
//
// Other schemes (tel:, mailto: ...) compare by scheme and the text after it,
// exactly.
func uriEqual(a, b *sip.Uri) bool {
	if a.Scheme != b.Scheme {
		return false
	}
	if !isSIPScheme(a.Scheme) {
		return a.Raw() == b.Raw()
	}
	if unescape(a.User) != unescape(b.User) || unescape(a.Password) != unescape(b.Password) {
		return false
	}
	if normalizeHost(unescape(a.Host)) != normalizeHost(unescape(b.Host)) || a.Port != b.Port {
		return false
	}
	return paramsEqual(a.UriParams, b.UriParams) && headersEqual(a.Headers, b.Headers)
}

// mustMatchParams are the URI parameters that, present in one URI, must be
// present in the other (RFC 3261 section 19.1.4).
var mustMatchParams = [...]string{"transport", "user", "ttl", "method", "maddr"}

func paramsEqual(a, b sip.HeaderParams) bool {
	for _, name := range mustMatchParams {
		va, oka := getFold(a, name)
		vb, okb := getFold(b, name)
		if oka != okb || !strings.EqualFold(va, vb) {
			return false
		}
	}
	for _, kv := range a {
		if vb, ok := getFold(b, kv.K); ok && !strings.EqualFold(unescape(kv.V), unescape(vb)) {
			return false
		}
	}
	return true
}

func headersEqual(a, b sip.HeaderParams) bool {
	if len(a) != len(b) {
		return false
	}
	for _, kv := range a {
		vb, ok := getFold(b, kv.K)
		if !ok || unescape(kv.V) != unescape(vb) {
			return false
		}
	}
	return true
}

func getFold(hp sip.HeaderParams, name string) (string, bool) {
	for _, kv := range hp {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

// unescape returns s with %HH escapes decoded, or s itself if it holds a
// malformed escape (then it can only equal the same malformed text).
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}
