package auth

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on an Authorization header field value, against memory abuse.
const (
	MaxHeaderLen = 8192 // bytes in one credentials value
	maxParams    = 32   // auth-params in one value
)

// Credentials are the Digest credentials of one Authorization (or
// Proxy-Authorization) header field value: RFC 3261 section 25.1
// digest-response, RFC 7616 section 3.4. Quoted values are unescaped.
type Credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string // the digest-uri, as sent
	Response  string // request-digest, hex as sent
	Algorithm string // as sent; "" means MD5
	Cnonce    string
	Opaque    string
	QOP       string // "" (RFC 2069 style), else the message-qop ("auth")
	NC        string // nonce-count, 8 hex digits; set exactly when QOP is
	Userhash  bool   // RFC 7616 userhash=true: Username is a hash
}

// ParseAuthorization parses a header field value "Digest username=...,
// ...". Parameter names are case-insensitive, values may be tokens or
// quoted strings (so quoted qop, nc or algorithm, as some phones send, are
// accepted), unknown parameters are ignored. It requires username, realm,
// nonce, uri and response; with qop it requires cnonce and an nc of 8 hex
// digits, not zero, and without qop it refuses cnonce and nc. A value
// longer than MaxHeaderLen, with a parameter twice, or with another scheme
// is refused. Every error wraps ErrMalformed. It never panics.
func ParseAuthorization(v string) (*Credentials, error) {
	params, err := parseChallengeLike(v)
	if err != nil {
		return nil, err
	}
	c := &Credentials{}
	fields := map[string]*string{
		"username": &c.Username, "realm": &c.Realm, "nonce": &c.Nonce, "uri": &c.URI,
		"response": &c.Response, "algorithm": &c.Algorithm, "cnonce": &c.Cnonce,
		"opaque": &c.Opaque, "qop": &c.QOP, "nc": &c.NC,
	}
	for _, p := range params {
		switch {
		case p.name == "userhash":
			c.Userhash = strings.EqualFold(p.value, "true")
		case fields[p.name] != nil:
			*fields[p.name] = p.value
		}
	}
	for _, req := range []struct{ name, v string }{
		{"username", c.Username}, {"realm", c.Realm}, {"nonce", c.Nonce}, {"uri", c.URI}, {"response", c.Response},
	} {
		if req.v == "" {
			return nil, fmt.Errorf("%w: no %s", ErrMalformed, req.name)
		}
	}
	if !isHex(c.Response) {
		return nil, fmt.Errorf("%w: response is not hex", ErrMalformed)
	}
	if c.QOP == "" {
		if c.NC != "" || c.Cnonce != "" {
			return nil, fmt.Errorf("%w: nc or cnonce without qop", ErrMalformed)
		}
		return c, nil
	}
	if c.Cnonce == "" {
		return nil, fmt.Errorf("%w: qop without cnonce", ErrMalformed)
	}
	if _, err := parseNC(c.NC); err != nil {
		return nil, err
	}
	return c, nil
}

// parseNC returns the value of an nc parameter: exactly 8 hex digits (RFC
// 7616 section 3.4 nc-value), counting from 1.
func parseNC(s string) (uint32, error) {
	if len(s) != 8 || !isHex(s) {
		return 0, fmt.Errorf("%w: nc %q is not 8 hex digits", ErrMalformed, s)
	}
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: nc %q must count from 00000001", ErrMalformed, s)
	}
	return uint32(n), nil
}

// String renders c as a header field value that ParseAuthorization
// accepts and parses to c again.
func (c *Credentials) String() string {
	var b strings.Builder
	b.WriteString("Digest ")
	add := func(name, v string, quote bool) {
		if b.Len() > len("Digest ") {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		if quote {
			writeQuoted(&b, v)
		} else {
			b.WriteString(v)
		}
	}
	add("username", c.Username, true)
	add("realm", c.Realm, true)
	add("nonce", c.Nonce, true)
	add("uri", c.URI, true)
	add("response", c.Response, true)
	if c.Algorithm != "" {
		add("algorithm", c.Algorithm, !isToken(c.Algorithm))
	}
	if c.Cnonce != "" {
		add("cnonce", c.Cnonce, true)
	}
	if c.Opaque != "" {
		add("opaque", c.Opaque, true)
	}
	if c.QOP != "" {
		add("qop", c.QOP, !isToken(c.QOP))
	}
	if c.NC != "" {
		add("nc", c.NC, false)
	}
	if c.Userhash {
		add("userhash", "true", false)
	}
	return b.String()
}

// authParam is one name=value of a challenge or credentials; name is
// lower-case, value unquoted.
type authParam struct{ name, value string }

var errNotDigest = errors.New("auth: not a Digest header")

// parseChallengeLike parses "Digest" LWS auth-param *(COMMA auth-param),
// the shape shared by WWW-Authenticate and Authorization values. Empty
// list elements (",,") are allowed as in RFC 7230 section 7. A value with
// another scheme gives an error wrapping both ErrMalformed and
// errNotDigest.
func parseChallengeLike(v string) ([]authParam, error) {
	if len(v) > MaxHeaderLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxHeaderLen)
	}
	v = strings.Trim(v, " \t")
	scheme, rest, _ := strings.Cut(v, " ")
	if tab := strings.IndexByte(scheme, '\t'); tab >= 0 {
		scheme, rest = v[:tab], v[tab:]
	}
	if !strings.EqualFold(scheme, "Digest") {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, errNotDigest)
	}
	var params []authParam
	p := paramScanner{s: rest}
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		if len(params) == maxParams {
			return nil, fmt.Errorf("%w: more than %d parameters", ErrMalformed, maxParams)
		}
		param, err := p.param()
		if err != nil {
			return nil, err
		}
		for _, q := range params {
			if q.name == param.name {
				return nil, fmt.Errorf("%w: parameter %s given twice", ErrMalformed, param.name)
			}
		}
		params = append(params, param)
		p.skipSpace()
		if !p.eof() && p.peek() != ',' {
			return nil, fmt.Errorf("%w: want ',' after %s at byte %d", ErrMalformed, param.name, p.i)
		}
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: no parameters", ErrMalformed)
	}
	return params, nil
}

// paramScanner walks an auth-param list.
type paramScanner struct {
	s string
	i int
}

func (p *paramScanner) eof() bool  { return p.i >= len(p.s) }
func (p *paramScanner) peek() byte { return p.s[p.i] }

func (p *paramScanner) skipSpace() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *paramScanner) token() string {
	start := p.i
	for !p.eof() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// param reads token SWS "=" SWS (token / quoted-string).
func (p *paramScanner) param() (authParam, error) {
	name := p.token()
	if name == "" {
		return authParam{}, fmt.Errorf("%w: want a parameter name at byte %d", ErrMalformed, p.i)
	}
	p.skipSpace()
	if p.eof() || p.peek() != '=' {
		return authParam{}, fmt.Errorf("%w: want '=' after %s", ErrMalformed, name)
	}
	p.i++
	p.skipSpace()
	name = strings.ToLower(name)
	if !p.eof() && p.peek() == '"' {
		v, err := p.quoted()
		if err != nil {
			return authParam{}, fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
		}
		return authParam{name, v}, nil
	}
	v := p.token()
	if v == "" {
		return authParam{}, fmt.Errorf("%w: %s has no value", ErrMalformed, name)
	}
	return authParam{name, v}, nil
}

// quoted reads a quoted-string (RFC 3261 section 25.1) and returns it
// unescaped. Control characters other than HTAB are refused, escaped or
// not: no Digest parameter has a use for them.
func (p *paramScanner) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.eof() {
				return "", errors.New("unterminated escape")
			}
			c = p.peek()
			p.i++
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", fmt.Errorf("control character %#02x", c)
		}
		b.WriteByte(c)
	}
	return "", errors.New("unterminated quoted string")
}

// writeQuoted writes s as a quoted-string, escaping '"' and '\'.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// isTokenChar: RFC 3261 section 25.1 token characters.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
