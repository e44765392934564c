package proxy

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// NewParser returns the sipgo parser the node reads SIP with: sipgo's,
// except that in From, To, Contact and Via values the linear white space
// RFC 3261 (section 25.1, SEMI, EQUAL, COMMA, SLASH) allows around ';',
// '=', ',' (and '/' in Via) is removed first. sipgo keeps it, so
// "; tag = 98asjd8" became a parameter " tag " that is no tag, and a
// valid request (RFC 4475 3.1.1.1, wsinv) was answered 400. Quoted
// strings and <...> are left as they are. Install it with
// sipgo.WithUserAgentParser.
func NewParser() *sip.Parser {
	m := make(map[string]sip.HeaderParser)
	for k, v := range sip.DefaultHeadersParser() {
		m[k] = v
	}
	for _, name := range []string{"from", "f", "to", "t", "contact", "m"} {
		if orig := m[name]; orig != nil {
			m[name] = func(hn []byte, v string) (sip.Header, error) { return orig(hn, trimSeparatorLWS(v, false)) }
		}
	}
	for _, name := range []string{"via", "v"} {
		if orig := m[name]; orig != nil {
			m[name] = func(hn []byte, v string) (sip.Header, error) { return orig(hn, trimSeparatorLWS(v, true)) }
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

// trimSeparatorLWS removes white space next to ';', '=' and ',' (and
// '/' when slash) outside quoted strings and angle brackets. A value
// without such white space is returned as it is.
func trimSeparatorLWS(v string, slash bool) string {
	sep := func(c byte) bool { return c == ';' || c == '=' || c == ',' || (slash && c == '/') }
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	needed := false
	for i := 0; i+1 < len(v); i++ {
		if (space(v[i]) && sep(v[i+1])) || (sep(v[i]) && space(v[i+1])) {
			needed = true
			break
		}
	}
	if !needed {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	quoted, angle := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			} else if c == '"' {
				quoted = false
			}
			continue
		case angle:
			b.WriteByte(c)
			angle = c != '>'
			continue
		case c == '"':
			quoted = true
		case c == '<':
			angle = true
		case space(c):
			j := i
			for j < len(v) && space(v[j]) {
				j++
			}
			prev := byte(0)
			if s := b.String(); len(s) > 0 {
				prev = s[len(s)-1]
			}
			if (j < len(v) && sep(v[j])) || sep(prev) {
				i = j - 1 // drop the run
				continue
			}
			b.WriteString(v[i:j])
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
