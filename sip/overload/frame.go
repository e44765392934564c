package overload

import (
	"bytes"
	"errors"
)

// errNeedMore: the framer holds no complete unit yet.
var errNeedMore = errors.New("overload: need more input")

// unit is what the framer cuts from a stream.
type unit int

const (
	// unitMessage: a complete SIP message (head and body).
	unitMessage unit = iota
	// unitPing: a CRLF CRLF keep-alive between messages, to be answered
	// with CRLF (RFC 5626 3.5.1). A lone CRLF (the pong) is skipped.
	unitPing
)

// framer cuts a SIP byte stream into messages, framed by Content-Length
// (RFC 3261 18.3), and keep-alives. It is synchronous: write appends
// input, next returns the next complete unit. Memory is bounded by max
// plus one write: a head or message over max is refused with
// ErrMessageTooLarge, and a buffer that grew is released once empty.
type framer struct {
	max int
	buf []byte
	off int // start of unconsumed input in buf

	// State of the message at off while it is incomplete.
	scanned  int  // bytes after off searched for the end of the head
	lineOK   bool // its start line was checked
	head     Head
	haveHead bool

	// Keep-alive state between messages: CRLFs seen in the current run,
	// and whether the last byte was a CR.
	crlfs int
	cr    bool
}

func newFramer(max int) *framer { return &framer{max: max} }

// write appends stream input.
func (f *framer) write(p []byte) {
	if f.off == len(f.buf) {
		if cap(f.buf) > 16<<10 {
			f.buf = nil // release what a big message grew
		}
		f.buf, f.off = f.buf[:0], 0
	} else if f.off > 0 && len(f.buf)+len(p) > cap(f.buf) {
		n := copy(f.buf, f.buf[f.off:])
		f.buf, f.off = f.buf[:n], 0
	}
	f.buf = append(f.buf, p...)
}

// pending reports whether part of a message is buffered (its first byte
// has arrived, its last not yet).
func (f *framer) pending() bool { return f.off < len(f.buf) }

// next returns the next complete unit. For unitMessage, msg (valid until
// the next write) is the whole message and h its head. It returns
// errNeedMore when the input so far holds no complete unit, and
// ErrMessageTooLarge or ErrMalformed when the stream cannot go on; h is
// then set if the head was read (so the request can still be answered).
func (f *framer) next() (u unit, msg []byte, h Head, err error) {
	in := f.buf[f.off:]
	if len(in) > 0 && (in[0] == '\r' || in[0] == '\n') && f.scanned == 0 {
		return f.keepAlive(in)
	}
	if len(in) == 0 {
		return 0, nil, Head{}, errNeedMore
	}
	f.cr, f.crlfs = false, 0
	if !f.haveHead {
		if !f.lineOK {
			if i := bytes.Index(in, []byte("\r\n")); i >= 0 {
				var sl Head
				if !startLineOK(in[:i], &sl) {
					return 0, nil, Head{}, ErrMalformed
				}
				f.lineOK = true
			} else if len(in) > f.max {
				return 0, nil, Head{}, ErrMessageTooLarge
			}
		}
		from := max(f.scanned-3, 0)
		i := bytes.Index(in[from:], []byte("\r\n\r\n"))
		if i < 0 {
			f.scanned = len(in)
			if len(in) > f.max {
				return 0, nil, Head{}, ErrMessageTooLarge
			}
			return 0, nil, Head{}, errNeedMore
		}
		hd, err := ParseHead(in[:from+i+4])
		if err != nil {
			return 0, nil, Head{}, ErrMalformed
		}
		f.scanned = len(in)
		if hd.ContentLength < 0 {
			// RFC 3261 18.3: mandatory on a stream; nothing frames the
			// message without it.
			return 0, nil, hd, ErrMalformed
		}
		if int64(hd.Len)+hd.ContentLength > int64(f.max) {
			return 0, nil, hd, ErrMessageTooLarge
		}
		f.head, f.haveHead = hd, true
	}
	total := f.head.Len + int(f.head.ContentLength)
	if len(in) < total {
		return 0, nil, Head{}, errNeedMore
	}
	msg, h = in[:total], f.head
	f.off += total
	f.scanned, f.lineOK, f.haveHead, f.head = 0, false, false, Head{}
	return unitMessage, msg, h, nil
}

// keepAlive consumes CR and LF bytes between messages. Every CRLF CRLF,
// also split over writes, is a ping.
func (f *framer) keepAlive(in []byte) (unit, []byte, Head, error) {
	for n, c := range in {
		switch c {
		case '\r':
			f.cr = true
			continue
		case '\n':
			if f.cr {
				f.crlfs++
			}
		default:
			f.off += n
			f.cr, f.crlfs = false, 0
			return f.next()
		}
		f.cr = false
		if f.crlfs == 2 {
			f.off += n + 1
			f.crlfs = 0
			return unitPing, nil, Head{}, nil
		}
	}
	f.off += len(in)
	return f.next()
}
