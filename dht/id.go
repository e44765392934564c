package dht

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Bits is the size of the identifier space: IDs are points on a ring of 2^Bits.
const Bits = 64

// ID is a point on the identifier ring. Arithmetic on IDs wraps modulo 2^64,
// which is exactly uint64 arithmetic.
type ID uint64

// HashKey maps a key (for example a SIP AOR) to its point on the ring: the
// first 8 bytes of SHA-256, big-endian.
func HashKey(key string) ID {
	sum := sha256.Sum256([]byte(key))
	return ID(binary.BigEndian.Uint64(sum[:8]))
}

// NodeID derives a node's ring ID from its stable name, so a node that
// restarts under the same name comes back to the same place on the ring.
func NodeID(name string) ID { return HashKey("node\x00" + name) }

// String renders an ID as 16 hex digits.
func (id ID) String() string { return fmt.Sprintf("%016x", uint64(id)) }

// between reports whether x lies on the open arc (a, b) going clockwise.
// When a == b the arc is the whole ring except a.
func between(x, a, b ID) bool {
	if a == b {
		return x != a
	}
	return x-a > 0 && x-a < b-a
}

// betweenRightIncl reports whether x lies on the half-open arc (a, b].
// When a == b the arc is the whole ring.
func betweenRightIncl(x, a, b ID) bool {
	if a == b {
		return true
	}
	return x-a > 0 && x-a <= b-a
}

// fingerStart is the start of finger i of n: n + 2^i.
func fingerStart(n ID, i int) ID { return n + ID(uint64(1)<<uint(i)) }
