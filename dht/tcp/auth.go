package tcp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/dsn-ims/dsn/dht"
)

// Handshake of a DHT connection (after the 'D' prefix byte). Each side
// holds a keyring: one or more cluster keys, the first its primary.
//
//	C -> S  version | nonceC[32]
//	S -> C  version | nonceS[32] | proofS(S's primary)
//	        only when that proof is not one of C's primary key:
//	C -> S  status=2 (more)
//	S -> C  n | proofS(S's key 1) ... proofS(S's key n)
//	        always:
//	C -> S  status=1 | proofC(k)          (status=0 alone: C rejects S)
//	S -> C  status                        (1 accepted, 0 rejected)
//
// With salt = version|nonceC|nonceS, every secret is HKDF-SHA256(key,
// salt, label): proofS ("server proof"), proofC ("client proof"), and the
// AES-256-GCM keys of the two directions ("client to server", "server to
// client"). k is the first key of C's ring that S proved, so C's primary
// whenever S holds it; S accepts a proofC made with any key of its ring,
// and both sides derive the session from k. Two nodes that share at least
// one key therefore connect, whatever their primaries, and a node that
// shares none is refused by both roles.
//
// Each side proves a key over a nonce the other side chose, so a recorded
// handshake cannot be replayed; the proofs have distinct labels, so one
// cannot be reflected as the other; the client checks the server's proofs
// before it sends its own, so a server without a key learns nothing it
// could use. With one key on each side, or when the server's primary is
// the client's, the exchange is the single round of protocol version 1
// as it was before keyrings: a node with one key talks to an older node
// with the same key. Proofs are compared with hmac.Equal, every key
// against every proof, without stopping at a match.
const (
	protoVersion  byte = 1
	nonceLen           = 32
	proofLen           = 32
	sessionKeyLen      = 32

	statusReject byte = 0
	statusOK     byte = 1
	statusMore   byte = 2 // client: send the proofs of your other keys

	labelServerProof = "server proof"
	labelClientProof = "client proof"
)

// session holds the ciphers of an authenticated connection and the key
// that authenticated it.
type session struct {
	send, recv cipher.AEAD
	key        []byte // the shared cluster key (the keyring's copy)
	keyIndex   int    // its position in this side's keyring; 0 is the primary
}

func handshakeSalt(nonceC, nonceS []byte) []byte {
	salt := make([]byte, 0, 1+2*nonceLen)
	salt = append(salt, protoVersion)
	salt = append(salt, nonceC...)
	return append(salt, nonceS...)
}

func derive(key, salt []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, key, salt, "dsn dht/tcp v1 "+label, sessionKeyLen)
}

// bestMatch returns the lowest index i such that the proof of r.keys[i]
// under label is among proofs, or -1. Every key is checked against every
// proof.
func bestMatch(r *keyring, salt []byte, label string, proofs [][]byte) (int, error) {
	best := -1
	for i := len(r.keys) - 1; i >= 0; i-- {
		want, err := derive(r.keys[i], salt, label)
		if err != nil {
			return -1, err
		}
		for _, p := range proofs {
			if hmac.Equal(p, want) {
				best = i
			}
		}
	}
	return best, nil
}

// newSession derives the ciphers of both directions from key i of r.
func newSession(r *keyring, i int, salt []byte, client bool) (session, error) {
	c2s, err := newAEAD(derive(r.keys[i], salt, "client to server"))
	if err != nil {
		return session{}, err
	}
	s2c, err := newAEAD(derive(r.keys[i], salt, "server to client"))
	if err != nil {
		return session{}, err
	}
	s := session{send: c2s, recv: s2c, key: r.keys[i], keyIndex: i}
	if !client {
		s.send, s.recv = s2c, c2s
	}
	return s, nil
}

func newAEAD(key []byte, err error) (cipher.AEAD, error) {
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func authError(format string, args ...any) error {
	return fmt.Errorf("dht/tcp: handshake: %s: %w", fmt.Sprintf(format, args...), dht.ErrUnauthenticated)
}

func versionError(got byte) error {
	return fmt.Errorf("dht/tcp: handshake: peer speaks protocol version %d, this node %d", got, protoVersion)
}

// clientHandshake runs the caller's side on rw, writing prefix first.
// Errors wrapping dht.ErrUnauthenticated mean no key proof matched; others
// are I/O or protocol errors. The caller sets the deadline.
func clientHandshake(rw io.ReadWriter, ring *keyring, rnd io.Reader, prefix byte) (session, error) {
	hello := make([]byte, 2+nonceLen)
	hello[0], hello[1] = prefix, protoVersion
	nonceC := hello[2:]
	if _, err := io.ReadFull(rnd, nonceC); err != nil {
		return session{}, fmt.Errorf("dht/tcp: handshake: nonce: %w", err)
	}
	if _, err := rw.Write(hello); err != nil {
		return session{}, err
	}
	reply := make([]byte, 1+nonceLen+proofLen)
	if _, err := io.ReadFull(rw, reply[:1]); err != nil {
		return session{}, err
	}
	if reply[0] != protoVersion {
		return session{}, versionError(reply[0])
	}
	if _, err := io.ReadFull(rw, reply[1:]); err != nil {
		return session{}, err
	}
	salt := handshakeSalt(nonceC, reply[1:1+nonceLen])
	proofs := [][]byte{reply[1+nonceLen:]}
	i, err := bestMatch(ring, salt, labelServerProof, proofs)
	if err != nil {
		return session{}, err
	}
	if i != 0 {
		// The server's primary is not ours: see which others it holds.
		if _, err := rw.Write([]byte{statusMore}); err != nil {
			return session{}, err
		}
		more, err := readMoreProofs(rw)
		if err != nil {
			return session{}, err
		}
		if i, err = bestMatch(ring, salt, labelServerProof, append(proofs, more...)); err != nil {
			return session{}, err
		}
	}
	if i < 0 {
		_, _ = rw.Write([]byte{statusReject})
		return session{}, authError("server could not prove any of our %d cluster keys", len(ring.keys))
	}
	proofC, err := derive(ring.keys[i], salt, labelClientProof)
	if err != nil {
		return session{}, err
	}
	if _, err := rw.Write(append([]byte{statusOK}, proofC...)); err != nil {
		return session{}, err
	}
	var status [1]byte
	if _, err := io.ReadFull(rw, status[:]); err != nil {
		return session{}, err
	}
	if status[0] != statusOK {
		return session{}, authError("server rejected our proof of the cluster key")
	}
	return newSession(ring, i, salt, true)
}

// readMoreProofs reads the server's answer to statusMore: a count, at
// most MaxKeys-1, and that many proofs.
func readMoreProofs(r io.Reader) ([][]byte, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	if int(n[0]) >= MaxKeys {
		return nil, fmt.Errorf("dht/tcp: handshake: server announced %d more key proofs, at most %d", n[0], MaxKeys-1)
	}
	buf := make([]byte, int(n[0])*proofLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	proofs := make([][]byte, n[0])
	for i := range proofs {
		proofs[i] = buf[i*proofLen : (i+1)*proofLen]
	}
	return proofs, nil
}

// serverHandshake runs the answering side on rw, after the prefix byte was
// consumed. Error classes as for clientHandshake.
func serverHandshake(rw io.ReadWriter, ring *keyring, rnd io.Reader) (session, error) {
	hello := make([]byte, 1+nonceLen)
	if _, err := io.ReadFull(rw, hello[:1]); err != nil {
		return session{}, err
	}
	if hello[0] != protoVersion {
		_, _ = rw.Write([]byte{protoVersion})
		return session{}, versionError(hello[0])
	}
	if _, err := io.ReadFull(rw, hello[1:]); err != nil {
		return session{}, err
	}
	reply := make([]byte, 1+nonceLen, 1+nonceLen+proofLen)
	reply[0] = protoVersion
	nonceS := reply[1:]
	if _, err := io.ReadFull(rnd, nonceS); err != nil {
		return session{}, fmt.Errorf("dht/tcp: handshake: nonce: %w", err)
	}
	salt := handshakeSalt(hello[1:], nonceS)
	proofS, err := derive(ring.keys[0], salt, labelServerProof)
	if err != nil {
		return session{}, err
	}
	if _, err := rw.Write(append(reply, proofS...)); err != nil {
		return session{}, err
	}
	var status [1]byte
	if _, err := io.ReadFull(rw, status[:]); err != nil {
		return session{}, err
	}
	if status[0] == statusMore {
		if err := writeMoreProofs(rw, ring, salt); err != nil {
			return session{}, err
		}
		if _, err := io.ReadFull(rw, status[:]); err != nil {
			return session{}, err
		}
		if status[0] == statusMore {
			return session{}, fmt.Errorf("dht/tcp: handshake: client asked twice for key proofs")
		}
	}
	if status[0] != statusOK {
		return session{}, authError("client rejected our proofs of the cluster key")
	}
	proofC := make([]byte, proofLen)
	if _, err := io.ReadFull(rw, proofC); err != nil {
		return session{}, err
	}
	i, err := bestMatch(ring, salt, labelClientProof, [][]byte{proofC})
	if err != nil {
		return session{}, err
	}
	if i < 0 {
		_, _ = rw.Write([]byte{statusReject})
		return session{}, authError("client could not prove any of our %d cluster keys", len(ring.keys))
	}
	if _, err := rw.Write([]byte{statusOK}); err != nil {
		return session{}, err
	}
	return newSession(ring, i, salt, false)
}

// writeMoreProofs answers statusMore: the count and the proofs of every
// key after the primary, in ring order.
func writeMoreProofs(w io.Writer, ring *keyring, salt []byte) error {
	out := make([]byte, 1, 1+(len(ring.keys)-1)*proofLen)
	out[0] = byte(len(ring.keys) - 1)
	for _, k := range ring.keys[1:] {
		p, err := derive(k, salt, labelServerProof)
		if err != nil {
			return err
		}
		out = append(out, p...)
	}
	_, err := w.Write(out)
	return err
}
