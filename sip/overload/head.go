package overload

import (
	"bytes"
	"errors"
)

// span is a byte range [start, end) of a message.
type span struct{ start, end int }

func (s span) of(b []byte) []byte { return b[s.start:s.end] }

// Head is what the gate reads from the start of a SIP message without
// parsing it fully: enough to classify it, to frame it on a stream, and to
// answer it statelessly. Its byte slices alias the message it was read
// from.
type Head struct {
	// Response is true for a response, false for a request.
	Response bool
	// Method is the request method as sent ("" for a response).
	Method string
	// ToTag is the To header's tag parameter (nil when absent: the request
	// is outside a dialog).
	ToTag []byte
	// Branch is the top Via's branch parameter (nil when absent).
	Branch []byte
	// Via is the top via-parm as sent (sent-protocol, sent-by and
	// parameters), CallID the Call-ID value and CSeq the CSeq sequence
	// number, all without surrounding whitespace (nil when absent): with
	// the method they identify the request's server transaction.
	Via, CallID, CSeq []byte
	// Len is the length of the start line, the headers and the empty line.
	Len int
	// ContentLength is the Content-Length header's value, -1 when the
	// message has none.
	ContentLength int64
}

// errIncomplete: the empty line ending the head has not arrived yet.
var errIncomplete = errors.New("overload: message head incomplete")

// ParseHead reads the head of the SIP message at the start of b. It
// returns errIncomplete when b holds no complete head yet, and
// ErrMalformed for input that is not a SIP message (a bad start line or
// Content-Length). It never panics and
// allocates only for an unusual method name.
func ParseHead(b []byte) (Head, error) {
	h := Head{ContentLength: -1}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	lineEnd := bytes.Index(b, []byte("\r\n"))
	if lineEnd >= 0 && !startLineOK(b[:lineEnd], &h) {
		return h, ErrMalformed
	}
	if end < 0 {
		return h, errIncomplete
	}
	h.Len = end + 4
	seenVia := false
	it := fields{b: b, pos: lineEnd + 2, end: end + 2}
	for it.next() {
		switch it.name {
		case "via":
			if !seenVia {
				seenVia = true
				h.Via = trimLWS(firstViaParm(it.value.of(b)))
				h.Branch = param(h.Via, "branch")
			}
		case "call-id":
			h.CallID = trimLWS(it.value.of(b))
		case "cseq":
			v := trimLWS(it.value.of(b))
			if i := bytes.IndexAny(v, " \t\r\n"); i >= 0 {
				v = v[:i]
			}
			h.CSeq = v
		case "to":
			h.ToTag = tagParam(it.value.of(b))
		case "content-length":
			n, ok := parseLength(it.value.of(b))
			if !ok {
				return h, ErrMalformed
			}
			h.ContentLength = n
		}
	}
	return h, nil
}

// fields iterates over the header fields of a head: b[pos:end] are the
// lines after the start line, each ending in CRLF. A line starting with
// SP or HT continues the previous field (RFC 3261 7.3.1). Lines without a
// colon are skipped (sipgo decides what to make of them).
type fields struct {
	b        []byte
	pos, end int
	// Current field: its lower-case long name when it is one the gate
	// reads ("" otherwise), the whole field and its value (after the
	// colon), both without the line end.
	name         string
	field, value span
}

func (it *fields) next() bool {
	for it.pos < it.end {
		fieldEnd := it.pos
		for {
			fieldEnd += bytes.Index(it.b[fieldEnd:it.end], []byte("\r\n"))
			if fieldEnd+2 < it.end && (it.b[fieldEnd+2] == ' ' || it.b[fieldEnd+2] == '\t') {
				fieldEnd += 2
				continue
			}
			break
		}
		it.field = span{it.pos, fieldEnd}
		it.pos = fieldEnd + 2
		colon := bytes.IndexByte(it.field.of(it.b), ':')
		if colon < 0 {
			continue
		}
		it.name = headerName(bytes.TrimRight(it.b[it.field.start:it.field.start+colon], " \t"))
		it.value = span{it.field.start + colon + 1, it.field.end}
		return true
	}
	return false
}

// parseLength parses a Content-Length value (digits, surrounding LWS);
// values above 2^32-1 are refused as sipgo refuses them.
func parseLength(v []byte) (int64, bool) {
	v = trimLWS(v)
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > 1<<32-1 {
			return 0, false
		}
	}
	return n, true
}

// startLineOK checks a request line (METHOD SP URI SP SIP/version) or a
// status line (SIP/version SP code SP reason) and fills Response and
// Method. Any SIP version passes: the stack answers 505 to one it does
// not support.
func startLineOK(line []byte, h *Head) bool {
	if hasPrefixFold(line, "SIP/") {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return false
		}
		rest := line[sp+1:]
		if len(rest) < 3 || !isDigits(rest[:3]) || (len(rest) > 3 && rest[3] != ' ') {
			return false
		}
		h.Response = true
		return true
	}
	sp := bytes.IndexByte(line, ' ')
	last := bytes.LastIndexByte(line, ' ')
	if sp <= 0 || last <= sp+1 || !hasPrefixFold(line[last+1:], "SIP/") {
		return false
	}
	m := line[:sp]
	for _, c := range m {
		if !isTokenChar(c) {
			return false
		}
	}
	h.Method = methodString(m)
	return true
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && bytes.EqualFold(b[:len(p)], []byte(p))
}

// methodString returns the method in upper case, as sipgo reads it
// (RFC 3261 says methods are case-sensitive; sipgo treats "ack" as ACK,
// and the gate must agree with the stack it guards), without allocating
// for the usual ones.
func methodString(m []byte) string {
	for _, s := range knownMethods {
		if bytes.EqualFold(m, []byte(s)) {
			return s
		}
	}
	return string(bytes.ToUpper(m))
}

var knownMethods = [...]string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE",
	"SUBSCRIBE", "NOTIFY", "UPDATE", "PRACK", "INFO", "REFER", "PUBLISH"}

// headerName maps a header name, long or compact form, in any case, to
// the lower-case long name of the headers the gate reads ("" otherwise).
func headerName(n []byte) string {
	switch len(n) {
	case 1:
		switch n[0] | 0x20 {
		case 'v':
			return "via"
		case 't':
			return "to"
		case 'f':
			return "from"
		case 'i':
			return "call-id"
		case 'l':
			return "content-length"
		}
		return ""
	}
	for _, s := range [...]string{"via", "to", "from", "call-id", "cseq", "content-length"} {
		if bytes.EqualFold(n, []byte(s)) {
			return s
		}
	}
	return ""
}

// firstViaParm returns the first via-parm of a Via value (several may be
// joined by commas).
func firstViaParm(v []byte) []byte {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return v[:i]
	}
	return v
}

// param returns the value of parameter name in a via-parm or a From/To
// value, parameters being everything after the first ';' (a flag
// parameter gives a non-nil empty value); nil when absent.
func param(v []byte, name string) []byte {
	i := bytes.IndexByte(v, ';')
	if i < 0 {
		return nil
	}
	v = v[i+1:]
	for len(v) > 0 {
		p := v
		if j := bytes.IndexByte(v, ';'); j >= 0 {
			p, v = v[:j], v[j+1:]
		} else {
			v = nil
		}
		k, val, hasValue := bytes.Cut(p, []byte("="))
		if bytes.EqualFold(trimLWS(k), []byte(name)) {
			if !hasValue {
				return []byte{}
			}
			return trimLWS(val)
		}
	}
	return nil
}

// tagParam returns the tag parameter of a From/To value, nil when absent
// or empty. Parameters after a name-addr's '>' belong to the header; an
// addr-spec without angle brackets cannot carry URI parameters (RFC 3261
// 20.10).
func tagParam(v []byte) []byte {
	if i := bytes.LastIndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	t := param(v, "tag")
	if len(t) == 0 {
		return nil
	}
	return t
}

func trimLWS(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// isTokenChar reports whether c may appear in an RFC 3261 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0
}
