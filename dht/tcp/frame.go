package tcp

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Frame layout after the handshake, in each direction:
//
//	uint32 big-endian n | n bytes AES-256-GCM ciphertext+tag
//
// The GCM nonce is not sent: it is the frame's sequence number in its
// direction (4 zero bytes, then the uint64 counter big-endian), so a
// replayed, dropped or reordered frame fails authentication. The length
// prefix is the additional authenticated data.
const (
	frameHeaderLen = 4
	tagLen         = 16
	// reusableFrame is the largest receive buffer kept between frames;
	// bigger frames get a buffer of their own that is dropped afterwards.
	reusableFrame = 64 << 10
)

var (
	errFrameTooLarge = errors.New("dht/tcp: frame exceeds the maximum message size")
	errFrameAuth     = errors.New("dht/tcp: frame failed authentication")
	errSeqExhausted  = errors.New("dht/tcp: frame counter exhausted")
)

func gcmNonce(seq uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], seq)
	return n
}

// sealer encrypts outgoing frames of one direction. Not safe for
// concurrent use: the owner serialises writes.
type sealer struct {
	aead cipher.AEAD
	seq  uint64
}

// seal turns frame, whose first frameHeaderLen bytes are reserved and
// whose rest is the plaintext, into a complete wire frame, in place where
// capacity allows (it grows frame otherwise). The sequence number is consumed only by commit, so a
// frame that was never written does not desynchronise the stream.
func (s *sealer) seal(frame []byte) ([]byte, error) {
	if s.seq == math.MaxUint64 {
		return nil, errSeqExhausted
	}
	n := len(frame) - frameHeaderLen + tagLen
	if uint64(n) > math.MaxUint32 {
		return nil, ErrMessageTooLarge
	}
	frame = slices.Grow(frame, tagLen)
	binary.BigEndian.PutUint32(frame, uint32(n))
	nonce := gcmNonce(s.seq)
	pt := frame[frameHeaderLen:]
	out := s.aead.Seal(pt[:0], nonce[:], pt, frame[:frameHeaderLen])
	return frame[:frameHeaderLen+len(out)], nil
}

// commit consumes the sequence number of the frame last sealed.
func (s *sealer) commit() { s.seq++ }

// opener reads and decrypts incoming frames of one direction. Not safe for
// concurrent use: one reader goroutine owns it.
type opener struct {
	r    io.Reader
	aead cipher.AEAD
	seq  uint64
	max  int // largest plaintext accepted
	buf  []byte
}

// next reads one frame and returns its plaintext, which aliases an
// internal buffer valid until the next call. A frame longer than max is
// rejected from its header, before anything is allocated for it.
func (o *opener) next() ([]byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(o.max)+tagLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, o.max+tagLen)
	}
	if n < tagLen {
		return nil, fmt.Errorf("%w: %d-byte frame", errFrameAuth, n)
	}
	if o.seq == math.MaxUint64 {
		return nil, errSeqExhausted
	}
	var buf []byte
	if n <= reusableFrame {
		if cap(o.buf) < int(n) {
			o.buf = make([]byte, min(max(int(n), 2*cap(o.buf), 4<<10), reusableFrame))
		}
		buf = o.buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(o.r, buf); err != nil {
		return nil, err
	}
	nonce := gcmNonce(o.seq)
	pt, err := o.aead.Open(buf[:0], nonce[:], buf, hdr[:])
	if err != nil {
		return nil, errFrameAuth
	}
	o.seq++
	return pt, nil
}
