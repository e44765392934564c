package dnsreport

import (
	"fmt"
	"strings"
)

// KeyFileError is a syntax or content error in a BIND key file, with the
// line it was found on (1-based; 0 when it concerns the whole file).
type KeyFileError struct {
	File string
	Line int
	Msg  string
}

func (e *KeyFileError) Error() string {
	where := "TSIG key file"
	if e.File != "" {
		where += " " + e.File
	}
	if e.Line > 0 {
		return fmt.Sprintf("dnsreport: %s, line %d: %s", where, e.Line, e.Msg)
	}
	return fmt.Sprintf("dnsreport: %s: %s", where, e.Msg)
}

// ParseKeys parses the key statements of a BIND configuration fragment as
// written by tsig-keygen:
//
//	key "name" { algorithm hmac-sha256; secret "base64=="; };
//
// Several keys per file, quoted or unquoted names and values, and the
// comment styles //, # and /* */ are accepted. Anything else is an error
// naming the line. file is only used in error messages.
func ParseKeys(file string, src []byte) ([]Key, error) {
	p := &keyParser{lex: keyLexer{src: src, line: 1}, file: file}
	keys, err := p.parse()
	if err != nil {
		return nil, err
	}
	return keys, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokPunct
)

type token struct {
	kind tokKind
	text string
	line int
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// keyLexer splits named.conf syntax into words, quoted strings and the
// punctuation { } ;, dropping comments.
type keyLexer struct {
	src  []byte
	pos  int
	line int
}

func (l *keyLexer) next() (token, *KeyFileError) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '#' || (c == '/' && l.peek(1) == '/'):
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && l.peek(1) == '*':
			start := l.line
			l.pos += 2
			for {
				if l.pos >= len(l.src) {
					return token{}, &KeyFileError{Line: start, Msg: "unterminated /* comment"}
				}
				if l.src[l.pos] == '*' && l.peek(1) == '/' {
					l.pos += 2
					break
				}
				if l.src[l.pos] == '\n' {
					l.line++
				}
				l.pos++
			}
		case c == '{' || c == '}' || c == ';':
			l.pos++
			return token{kind: tokPunct, text: string(c), line: l.line}, nil
		case c == '"':
			return l.quoted()
		default:
			start := l.pos
			for l.pos < len(l.src) && !isKeyFileDelim(l.src[l.pos]) {
				l.pos++
			}
			return token{kind: tokWord, text: string(l.src[start:l.pos]), line: l.line}, nil
		}
	}
	return token{kind: tokEOF, line: l.line}, nil
}

func (l *keyLexer) peek(n int) byte {
	if l.pos+n < len(l.src) {
		return l.src[l.pos+n]
	}
	return 0
}

func (l *keyLexer) quoted() (token, *KeyFileError) {
	start := l.line
	l.pos++ // opening quote
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch c {
		case '"':
			l.pos++
			return token{kind: tokString, text: b.String(), line: start}, nil
		case '\n':
			return token{}, &KeyFileError{Line: start, Msg: "unterminated quoted string (missing closing \")"}
		case '\\':
			if l.pos+1 < len(l.src) && l.src[l.pos+1] != '\n' {
				l.pos++
				c = l.src[l.pos]
			}
		}
		b.WriteByte(c)
		l.pos++
	}
	return token{}, &KeyFileError{Line: start, Msg: "unterminated quoted string (missing closing \")"}
}

func isKeyFileDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', '\v', '{', '}', ';', '"':
		return true
	}
	return false
}

type keyParser struct {
	lex  keyLexer
	file string
}

func (p *keyParser) errorf(line int, format string, args ...any) *KeyFileError {
	return &KeyFileError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *keyParser) next() (token, error) {
	t, err := p.lex.next()
	if err != nil {
		err.File = p.file
		return t, err
	}
	return t, nil
}

// expect reads one punctuation token.
func (p *keyParser) expect(punct, after string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.kind != tokPunct || t.text != punct {
		return p.errorf(t.line, "expected %q after %s, found %s", punct, after, t.describe())
	}
	return nil
}

// value reads a word or quoted string followed by ';'.
func (p *keyParser) value(clause string) (token, error) {
	t, err := p.next()
	if err != nil {
		return t, err
	}
	if t.kind != tokWord && t.kind != tokString {
		return t, p.errorf(t.line, "%s needs a value, found %s", clause, t.describe())
	}
	return t, p.expect(";", clause+" "+t.text)
}

func (p *keyParser) parse() ([]Key, error) {
	var keys []Key
	seen := map[string]int{}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tokEOF {
			break
		}
		if t.kind != tokWord || !strings.EqualFold(t.text, "key") {
			return nil, p.errorf(t.line, "unexpected %s: a key file holds only key \"name\" { algorithm ...; secret \"...\"; }; statements", t.describe())
		}
		k, line, err := p.key(t.line)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[k.Name]; dup {
			return nil, p.errorf(line, "key %q is defined twice (first on line %d)", k.Name, prev)
		}
		seen[k.Name] = line
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, p.errorf(0, "no key statement found")
	}
	return keys, nil
}

// key parses the rest of one key statement after the word "key".
func (p *keyParser) key(line int) (Key, int, error) {
	nameTok, err := p.next()
	if err != nil {
		return Key{}, line, err
	}
	if nameTok.kind != tokWord && nameTok.kind != tokString {
		return Key{}, line, p.errorf(nameTok.line, "key needs a name, found %s", nameTok.describe())
	}
	if err := p.expect("{", "key "+nameTok.text); err != nil {
		return Key{}, line, err
	}
	var alg, secret token
	for {
		t, err := p.next()
		if err != nil {
			return Key{}, line, err
		}
		if t.kind == tokPunct && t.text == "}" {
			break
		}
		if t.kind != tokWord {
			return Key{}, line, p.errorf(t.line, "in key %q: expected algorithm, secret or }, found %s", nameTok.text, t.describe())
		}
		switch strings.ToLower(t.text) {
		case "algorithm":
			if alg.line != 0 {
				return Key{}, line, p.errorf(t.line, "key %q has two algorithm clauses", nameTok.text)
			}
			if alg, err = p.value("algorithm"); err != nil {
				return Key{}, line, err
			}
		case "secret":
			if secret.line != 0 {
				return Key{}, line, p.errorf(t.line, "key %q has two secret clauses", nameTok.text)
			}
			if secret, err = p.value("secret"); err != nil {
				return Key{}, line, err
			}
		default:
			return Key{}, line, p.errorf(t.line, "in key %q: unknown clause %q (a key has only algorithm and secret)", nameTok.text, t.text)
		}
	}
	if err := p.expect(";", "the closing } of key "+nameTok.text); err != nil {
		return Key{}, line, err
	}
	if secret.line == 0 {
		return Key{}, line, p.errorf(line, "key %q has no secret", nameTok.text)
	}
	return p.build(nameTok, alg, secret, line)
}

func (p *keyParser) build(name, alg, secret token, line int) (Key, int, error) {
	if strings.TrimSpace(name.text) == "" {
		return Key{}, line, p.errorf(name.line, "key name is empty")
	}
	k, err := NewKey(name.text, alg.text, secret.text)
	if err == nil {
		return k, line, nil
	}
	// Point at the clause that is wrong.
	if _, aerr := canonicalAlgorithm(alg.text); aerr != nil {
		return Key{}, line, p.errorf(alg.line, "key %q: %v", name.text, aerr)
	}
	if serr := checkSecret(strings.TrimSpace(secret.text)); serr != nil {
		return Key{}, line, p.errorf(secret.line, "key %q: %v", name.text, serr)
	}
	return Key{}, line, p.errorf(name.line, "key name %q is not a valid domain name", name.text)
}
