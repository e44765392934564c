package overload

import (
	"bytes"
	"encoding/hex"
	"hash/fnv"
	"net/netip"
	"strconv"
)

// TagPrefix starts the To tag of every response the gate sends itself.
// The ACK of such a response (a non-2xx: the ACK ends its transaction
// hop by hop) is recognised by it and absorbed.
const TagPrefix = "dsnovl-"

// appendResponse appends to dst a response to the request msg (head h)
// with status code and reason: the request's Via, From, To, Call-ID and
// CSeq fields copied as sent, a To tag added when there is none
// (TagPrefix and a hash of Call-ID, From and branch: retransmissions get
// the same tag), Retry-After when retryAfter > 0, and Content-Length: 0.
// When src is valid and the top Via carries rport without a value, rport
// and received are filled in (RFC 3581).
//
// It also returns where a response over UDP goes (RFC 3261 18.2.2, RFC
// 3581 4): src when the top Via has rport, else src's address with the
// Via's sent-by port (5060 by default).
func appendResponse(dst, msg []byte, h *Head, code int, reason string, retryAfter int, src netip.AddrPort) ([]byte, netip.AddrPort) {
	to := ReplyAddr(msg, h, src)
	dst = append(dst, "SIP/2.0 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, reason...)
	dst = append(dst, "\r\n"...)
	lineEnd := bytes.Index(msg, []byte("\r\n"))
	tag := h.ToTag == nil
	topVia := true
	it := fields{b: msg, pos: lineEnd + 2, end: h.Len - 2}
	for it.next() {
		switch it.name {
		case "via":
			if topVia {
				topVia = false
				dst = appendTopVia(dst, msg, it.field, it.value, src)
				continue
			}
		case "to":
			dst = append(dst, it.field.of(msg)...)
			if tag {
				dst = append(dst, ";tag="...)
				dst = appendTag(dst, msg, h)
			}
			dst = append(dst, "\r\n"...)
			continue
		case "from", "call-id", "cseq":
		default:
			continue
		}
		dst = append(dst, it.field.of(msg)...)
		dst = append(dst, "\r\n"...)
	}
	if retryAfter > 0 {
		dst = append(dst, "Retry-After: "...)
		dst = strconv.AppendInt(dst, int64(retryAfter), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: 0\r\n\r\n"...)
	return dst, to
}

// appendTopVia appends the top Via field, with rport and received filled
// in when it asks for rport and src is valid.
func appendTopVia(dst, msg []byte, field, value span, src netip.AddrPort) []byte {
	v := value.of(msg)
	parm := firstViaParm(v)
	rport := param(parm, "rport")
	if rport != nil {
		if len(rport) != 0 || !src.IsValid() {
			return append(append(dst, field.of(msg)...), "\r\n"...)
		}
		// parm holds ";rport" (a flag) somewhere: find the flag's end.
		at := flagEnd(parm, "rport")
		if at < 0 {
			return append(append(dst, field.of(msg)...), "\r\n"...)
		}
		abs := value.start + at
		dst = append(dst, msg[field.start:abs]...)
		dst = append(dst, '=')
		dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
		dst = append(dst, msg[abs:value.start+len(parm)]...)
		dst = append(dst, ";received="...)
		dst = append(dst, src.Addr().Unmap().String()...)
		dst = append(dst, msg[value.start+len(parm):field.end]...)
		return append(dst, "\r\n"...)
	}
	return append(append(dst, field.of(msg)...), "\r\n"...)
}

// flagEnd returns the offset in parm just after the flag parameter name
// (";name" not followed by '='), -1 when there is none.
func flagEnd(parm []byte, name string) int {
	off := 0
	for {
		i := bytes.IndexByte(parm[off:], ';')
		if i < 0 {
			return -1
		}
		start := off + i + 1
		end := start
		for end < len(parm) && parm[end] != ';' && parm[end] != '=' {
			end++
		}
		k := parm[start:end]
		if bytes.EqualFold(trimLWS(k), []byte(name)) && (end == len(parm) || parm[end] == ';') {
			return start + len(bytes.TrimRight(k, " \t\r\n"))
		}
		off = end
	}
}

// sentByPort returns the port of a via-parm's sent-by, 5060 when absent
// or unreadable.
func sentByPort(parm []byte) int {
	if i := bytes.IndexByte(parm, ';'); i >= 0 {
		parm = parm[:i]
	}
	f := bytes.Fields(parm)
	if len(f) == 0 {
		return 5060
	}
	hp := f[len(f)-1]
	var p []byte
	if i := bytes.LastIndexByte(hp, ']'); i >= 0 {
		if i+1 < len(hp) && hp[i+1] == ':' {
			p = hp[i+2:]
		}
	} else if i := bytes.IndexByte(hp, ':'); i >= 0 && bytes.Count(hp, []byte(":")) == 1 {
		p = hp[i+1:]
	}
	n, err := strconv.Atoi(string(p))
	if err != nil || n < 1 || n > 65535 {
		return 5060
	}
	return n
}

// appendTag appends the gate's To tag for the request: TagPrefix and a
// hash of its Call-ID, From and top Via branch, so that a retransmission
// gets the same tag.
func appendTag(dst, msg []byte, h *Head) []byte {
	f := fnv.New64a()
	lineEnd := bytes.Index(msg, []byte("\r\n"))
	it := fields{b: msg, pos: lineEnd + 2, end: h.Len - 2}
	for it.next() {
		if it.name == "call-id" || it.name == "from" {
			f.Write(trimLWS(it.value.of(msg)))
		}
	}
	f.Write(h.Branch)
	var sum [8]byte
	dst = append(dst, TagPrefix...)
	return hex.AppendEncode(dst, f.Sum(sum[:0]))
}
