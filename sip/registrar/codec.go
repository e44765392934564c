package registrar

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Bounds of the binding-set encoding. MarshalBindings refuses a set that
// exceeds them and UnmarshalBindings refuses input that does, so a record
// written by one node can always be read by another. The registrar answers
// 400 to a REGISTER that would exceed them.
const (
	MaxBindings    = 256     // bindings in one set
	MaxURILen      = 2048    // bytes of a Contact URI or one Path value
	MaxCallIDLen   = 512     // bytes of a Call-ID
	MaxPathLen     = 16      // Path values of one binding
	MaxInstanceLen = 256     // bytes of a +sip.instance value
	MaxEncodedLen  = 1 << 20 // bytes of one encoded set
)

// codecV1 is the first byte of the current format.
const codecV1 = 1

// Per-binding flags: which optional fields follow.
const (
	flagQ byte = 1 << iota
	flagPath
	flagReceived
	flagInstance
	flagRegID
	flagsKnown = flagQ | flagPath | flagReceived | flagInstance | flagRegID
)

// Transport codes of Binding.Received; transportOther is followed by the
// name as a string.
var transportCodes = [...]string{1: "UDP", 2: "TCP", 3: "TLS", 4: "SCTP", 5: "WS", 6: "WSS"}

const (
	transportOther  = 7
	maxTransportLen = 16
	maxUnixMilli    = 253402300799999 // 9999-12-31T23:59:59.999Z
	minBindingBytes = 7               // flags, contact, call-id, cseq, registered, expires
)

// MarshalBindings encodes s compactly. Format v1 (all integers unsigned
// varints, strings a varint length then the bytes, times Unix milliseconds
// plus one with 0 for the zero time):
//
//	version byte (1) | retainUntil time | count | count × binding
//	binding: flags byte | contact | callID | cseq | registered | expires
//	         [q (thousandths)] [path: n, n × string]
//	         [received: transport code (7: then a string), ip length (4|16),
//	          ip bytes, port (2 bytes big-endian)] [instance] [regID]
//
// Optional fields are present when their flag bit is set (q, path,
// received, instance, regID in bit order). Times keep millisecond
// precision. A Received without a valid address is not stored.
func MarshalBindings(s BindingSet) ([]byte, error) {
	if len(s.Bindings) > MaxBindings {
		return nil, fmt.Errorf("%w: %d bindings, at most %d", ErrMalformed, len(s.Bindings), MaxBindings)
	}
	buf := make([]byte, 0, 16+len(s.Bindings)*160)
	buf = append(buf, codecV1)
	var err error
	if buf, err = appendTime(buf, s.RetainUntil); err != nil {
		return nil, err
	}
	buf = binary.AppendUvarint(buf, uint64(len(s.Bindings)))
	for i := range s.Bindings {
		if buf, err = appendBinding(buf, &s.Bindings[i]); err != nil {
			return nil, fmt.Errorf("%w (binding %d)", err, i)
		}
	}
	if len(buf) > MaxEncodedLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(buf), MaxEncodedLen)
	}
	return buf, nil
}

func appendBinding(buf []byte, b *Binding) ([]byte, error) {
	if err := checkBinding(b); err != nil {
		return nil, err
	}
	var flags byte
	if b.Q != QNone {
		flags |= flagQ
	}
	if len(b.Path) > 0 {
		flags |= flagPath
	}
	if b.Received.Addr.IsValid() {
		flags |= flagReceived
	}
	if b.Instance != "" {
		flags |= flagInstance
	}
	if b.RegID != 0 {
		flags |= flagRegID
	}
	buf = append(buf, flags)
	buf = appendString(buf, b.Contact)
	buf = appendString(buf, b.CallID)
	buf = binary.AppendUvarint(buf, uint64(b.CSeq))
	var err error
	if buf, err = appendTime(buf, b.Registered); err != nil {
		return nil, err
	}
	if buf, err = appendTime(buf, b.Expires); err != nil {
		return nil, err
	}
	if flags&flagQ != 0 {
		buf = binary.AppendUvarint(buf, uint64(b.Q))
	}
	if flags&flagPath != 0 {
		buf = binary.AppendUvarint(buf, uint64(len(b.Path)))
		for _, p := range b.Path {
			buf = appendString(buf, p)
		}
	}
	if flags&flagReceived != 0 {
		buf = appendSource(buf, b.Received)
	}
	if flags&flagInstance != 0 {
		buf = appendString(buf, b.Instance)
	}
	if flags&flagRegID != 0 {
		buf = binary.AppendUvarint(buf, uint64(b.RegID))
	}
	return buf, nil
}

// checkBinding enforces the format bounds on one binding.
func checkBinding(b *Binding) error {
	switch {
	case b.Contact == "" || len(b.Contact) > MaxURILen:
		return fmt.Errorf("%w: contact length %d, want 1..%d", ErrMalformed, len(b.Contact), MaxURILen)
	case len(b.CallID) > MaxCallIDLen:
		return fmt.Errorf("%w: Call-ID length %d, at most %d", ErrMalformed, len(b.CallID), MaxCallIDLen)
	case b.Q != QNone && (b.Q < 0 || b.Q > 1000):
		return fmt.Errorf("%w: q %d, want 0..1000", ErrMalformed, b.Q)
	case len(b.Path) > MaxPathLen:
		return fmt.Errorf("%w: %d Path values, at most %d", ErrMalformed, len(b.Path), MaxPathLen)
	case len(b.Instance) > MaxInstanceLen:
		return fmt.Errorf("%w: instance length %d, at most %d", ErrMalformed, len(b.Instance), MaxInstanceLen)
	case b.Received.Addr.IsValid() && transportCode(b.Received.Transport) == transportOther &&
		len(b.Received.Transport) > maxTransportLen:
		return fmt.Errorf("%w: transport name %q too long", ErrMalformed, b.Received.Transport)
	}
	for _, p := range b.Path {
		if p == "" || len(p) > MaxURILen {
			return fmt.Errorf("%w: Path value length %d, want 1..%d", ErrMalformed, len(p), MaxURILen)
		}
	}
	return nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendTime(buf []byte, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return append(buf, 0), nil
	}
	ms := t.UnixMilli()
	if ms < 0 || ms > maxUnixMilli {
		return nil, fmt.Errorf("%w: time %v out of range", ErrMalformed, t)
	}
	return binary.AppendUvarint(buf, uint64(ms)+1), nil
}

func transportCode(name string) byte {
	for code, n := range transportCodes {
		if n != "" && n == name {
			return byte(code)
		}
	}
	if name == "" {
		return 0
	}
	return transportOther
}

func appendSource(buf []byte, s Source) []byte {
	code := transportCode(s.Transport)
	buf = append(buf, code)
	if code == transportOther {
		buf = appendString(buf, s.Transport)
	}
	ip := s.Addr.Addr().WithZone("")
	if ip.Is4() {
		a := ip.As4()
		buf = append(buf, 4)
		buf = append(buf, a[:]...)
	} else {
		a := ip.As16()
		buf = append(buf, 16)
		buf = append(buf, a[:]...)
	}
	return binary.BigEndian.AppendUint16(buf, s.Addr.Port())
}

// UnmarshalBindings decodes what MarshalBindings wrote. It never panics;
// any input that is not a valid encoding within the bounds gives an error
// wrapping ErrMalformed. The result does not alias data.
func UnmarshalBindings(data []byte) (BindingSet, error) {
	if len(data) == 0 {
		return BindingSet{}, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	if len(data) > MaxEncodedLen {
		return BindingSet{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(data), MaxEncodedLen)
	}
	if data[0] != codecV1 {
		return BindingSet{}, fmt.Errorf("%w: unknown format version %d", ErrMalformed, data[0])
	}
	r := reader{b: data[1:]}
	var s BindingSet
	s.RetainUntil = r.time()
	n := r.count(MaxBindings, "bindings")
	if r.err == nil && n > 0 {
		s.Bindings = make([]Binding, 0, min(n, len(r.b)/minBindingBytes+1))
	}
	for i := 0; i < n && r.err == nil; i++ {
		s.Bindings = append(s.Bindings, r.binding())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return BindingSet{}, r.err
	}
	return s, nil
}

// reader consumes an encoding; the first failure sticks in err and every
// later read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must not exceed max.
func (r *reader) count(max int, what string) int {
	v := r.uvarint()
	if v > uint64(max) {
		r.fail("%d %s, at most %d", v, what, max)
		return 0
	}
	return int(v)
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) str(max int, what string) string {
	return string(r.bytes(r.count(max, what+" bytes")))
}

func (r *reader) time() time.Time {
	v := r.uvarint()
	if v == 0 {
		return time.Time{}
	}
	if v-1 > maxUnixMilli {
		r.fail("time out of range")
		return time.Time{}
	}
	return time.UnixMilli(int64(v - 1)).UTC()
}

func (r *reader) u32(what string) uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return uint32(v)
}

func (r *reader) binding() Binding {
	flags := r.byte()
	if flags&^flagsKnown != 0 {
		r.fail("unknown flags %#x", flags)
		return Binding{}
	}
	b := Binding{Q: QNone}
	b.Contact = r.str(MaxURILen, "contact")
	b.CallID = r.str(MaxCallIDLen, "Call-ID")
	b.CSeq = r.u32("CSeq")
	b.Registered = r.time()
	b.Expires = r.time()
	if r.err == nil && b.Contact == "" {
		r.fail("empty contact")
	}
	if flags&flagQ != 0 {
		q := r.uvarint()
		if q > 1000 {
			r.fail("q %d out of range", q)
		}
		b.Q = int(q)
	}
	if flags&flagPath != 0 {
		n := r.count(MaxPathLen, "Path values")
		if n == 0 {
			r.fail("empty Path list")
		}
		for i := 0; i < n && r.err == nil; i++ {
			p := r.str(MaxURILen, "Path value")
			if p == "" {
				r.fail("empty Path value")
			}
			b.Path = append(b.Path, p)
		}
	}
	if flags&flagReceived != 0 {
		b.Received = r.source()
	}
	if flags&flagInstance != 0 {
		b.Instance = r.str(MaxInstanceLen, "instance")
		if b.Instance == "" {
			r.fail("empty instance")
		}
	}
	if flags&flagRegID != 0 {
		b.RegID = r.u32("reg-id")
		if b.RegID == 0 {
			r.fail("zero reg-id")
		}
	}
	return b
}

func (r *reader) source() Source {
	var s Source
	switch code := r.byte(); {
	case code == transportOther:
		s.Transport = r.str(maxTransportLen, "transport")
		if transportCode(s.Transport) != transportOther {
			r.fail("transport %q not in canonical form", s.Transport)
		}
	case int(code) < len(transportCodes):
		s.Transport = transportCodes[code]
	default:
		r.fail("unknown transport code %d", code)
	}
	var ip netip.Addr
	switch n := r.byte(); n {
	case 4:
		ip, _ = netip.AddrFromSlice(r.bytes(4))
	case 16:
		ip, _ = netip.AddrFromSlice(r.bytes(16))
	default:
		r.fail("ip length %d", n)
	}
	port := r.bytes(2)
	if r.err != nil {
		return Source{}
	}
	if !ip.IsValid() {
		r.fail("bad ip")
		return Source{}
	}
	s.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(port))
	return s
}
