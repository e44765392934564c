package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dsn-ims/dsn/dht"
)

// Minimum encoded sizes, used to bound element counts by the bytes that are
// actually left in the input before anything is allocated.
const (
	minPeerSize   = 8 + 1 + 1 + 1     // id, empty name, addr, meta
	minRecordSize = 1 + 1 + 1 + 1 + 1 // key, value, version, expires, flags
	idSize        = 8
)

// recordDeleted is the only flag bit a Record carries; other bits are
// rejected so that every accepted encoding is canonical.
const recordDeleted = 1 << 0

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("dht/tcp: malformed message")

// encoder appends the compact binary encoding of DHT values to buf.
// Encoding never fails; size limits are checked on the finished buffer.
type encoder struct{ buf []byte }

func (e *encoder) byte(b byte)        { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64)   { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)     { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) id(v dht.ID)        { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }
func (e *encoder) string(s string)    { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte)     { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) count(n int)        { e.uvarint(uint64(n)) }
func (e *encoder) bool(b bool)        { e.byte(boolByte(b)) }
func (e *encoder) ids(ids []dht.ID)   { e.count(len(ids)); appendEach(e, ids, (*encoder).id) }
func (e *encoder) peers(p []dht.Peer) { e.count(len(p)); appendEach(e, p, (*encoder).peer) }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func appendEach[T any](e *encoder, items []T, f func(*encoder, T)) {
	for _, it := range items {
		f(e, it)
	}
}

func (e *encoder) peer(p dht.Peer) {
	e.id(p.ID)
	e.string(p.Name)
	e.string(p.Addr)
	e.string(p.Meta)
}

func (e *encoder) record(r dht.Record) {
	e.string(r.Key)
	e.bytes(r.Value)
	e.uvarint(r.Version)
	e.varint(r.Expires)
	var flags byte
	if r.Deleted {
		flags |= recordDeleted
	}
	e.byte(flags)
}

func (e *encoder) records(rs []dht.Record) { e.count(len(rs)); appendEach(e, rs, (*encoder).record) }

func (e *encoder) neighbors(n dht.Neighbors) {
	e.peer(n.Predecessor)
	e.peers(n.Successors)
}

func (e *encoder) step(s dht.Step) {
	e.bool(s.Done)
	e.peer(s.Next)
	e.peers(s.Successors)
}

func (e *encoder) leaveNotice(n dht.LeaveNotice) {
	e.peer(n.Leaving)
	e.peer(n.Predecessor)
	e.peers(n.Successors)
}

func (e *encoder) putRequest(r dht.PutRequest) {
	e.record(r.Record)
	e.uvarint(r.IfVersion)
	e.bool(r.Conditional)
}

func (e *encoder) putResult(r dht.PutResult) {
	e.uvarint(r.Version)
	e.varint(int64(r.Copies))
}

func (e *encoder) digest(d dht.Digest) {
	e.id(d.Lo)
	e.id(d.Hi)
	e.count(len(d.Buckets))
	for _, b := range d.Buckets {
		e.buf = binary.BigEndian.AppendUint64(e.buf, b)
	}
}

func (e *encoder) digestReply(r dht.DigestReply) {
	e.count(len(r.Differ))
	for _, i := range r.Differ {
		e.varint(int64(i))
	}
	e.records(r.Records)
	e.bool(r.Partial)
}

// decoder reads what encoder wrote. It never panics and never allocates
// more than a small multiple of the input length: every length and count is
// checked against the bytes that remain before it is used. The first error
// sticks; later reads return zero values. Only canonical encodings are
// accepted (minimal varints, booleans 0/1, no unknown flag bits, no
// trailing bytes), so a decoded value re-encodes to the same bytes.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
	}
}

// finish reports the first error, or an error if input is left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	return d.err
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n > 1 && d.buf[n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// int reads a varint that must fit in an int on this platform.
func (d *decoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail("integer out of range")
		return 0
	}
	return int(v)
}

func (d *decoder) id() dht.ID {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < idSize {
		d.fail("truncated id")
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[idSize:]
	return dht.ID(v)
}

func (d *decoder) bool() bool {
	switch b := d.byte(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad boolean %d", b)
		return false
	}
}

// raw returns the next length-prefixed byte run, aliasing the input.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) string() string { return string(d.raw()) }

// bytes returns a copy (the input buffer is reused); empty decodes as nil.
func (d *decoder) bytes() []byte {
	b := d.raw()
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// count reads an element count and checks that count elements of at least
// minSize bytes each fit in what is left.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.buf)/minSize) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.buf))
		return 0
	}
	return int(n)
}

// list decodes a counted list; an empty list decodes as nil.
func list[T any](d *decoder, minSize int, f func(*decoder) T) []T {
	n := d.count(minSize)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = f(d)
		if d.err != nil {
			return nil
		}
	}
	return out
}

func (d *decoder) ids() []dht.ID         { return list(d, idSize, (*decoder).id) }
func (d *decoder) peers() []dht.Peer     { return list(d, minPeerSize, (*decoder).peer) }
func (d *decoder) records() []dht.Record { return list(d, minRecordSize, (*decoder).record) }

func (d *decoder) peer() dht.Peer {
	return dht.Peer{ID: d.id(), Name: d.string(), Addr: d.string(), Meta: d.string()}
}

func (d *decoder) record() dht.Record {
	r := dht.Record{Key: d.string(), Value: d.bytes(), Version: d.uvarint(), Expires: d.varint()}
	flags := d.byte()
	if flags&^recordDeleted != 0 {
		d.fail("unknown record flags %#x", flags)
	}
	r.Deleted = flags&recordDeleted != 0
	return r
}

func (d *decoder) neighbors() dht.Neighbors {
	return dht.Neighbors{Predecessor: d.peer(), Successors: d.peers()}
}

func (d *decoder) step() dht.Step {
	return dht.Step{Done: d.bool(), Next: d.peer(), Successors: d.peers()}
}

func (d *decoder) leaveNotice() dht.LeaveNotice {
	return dht.LeaveNotice{Leaving: d.peer(), Predecessor: d.peer(), Successors: d.peers()}
}

func (d *decoder) putRequest() dht.PutRequest {
	return dht.PutRequest{Record: d.record(), IfVersion: d.uvarint(), Conditional: d.bool()}
}

func (d *decoder) putResult() dht.PutResult {
	return dht.PutResult{Version: d.uvarint(), Copies: d.int()}
}

func (d *decoder) digest() dht.Digest {
	g := dht.Digest{Lo: d.id(), Hi: d.id()}
	g.Buckets = list(d, 8, func(d *decoder) uint64 { return uint64(d.id()) })
	return g
}

func (d *decoder) digestReply() dht.DigestReply {
	return dht.DigestReply{
		Differ:  list(d, 1, (*decoder).int),
		Records: d.records(),
		Partial: d.bool(),
	}
}
