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

// Handshake of a DHT connection (after the 'D' prefix byte):
//
//	C -> S  version | nonceC[32]
//	S -> C  version | nonceS[32] | proofS[32]
//	C -> S  status=1 | proofC[32]       (status=0 alone: C rejects S)
//	S -> C  status                      (1 accepted, 0 rejected)
//
// With salt = version|nonceC|nonceS, every secret is
// HKDF-SHA256(clusterKey, salt, label): proofS ("server proof"), proofC
// ("client proof"), and the AES-256-GCM keys of the two directions ("client
// to server", "server to client"). Each side proves the key over a nonce the
// other side chose, so a recorded handshake cannot be replayed; the proofs
// have distinct labels, so one cannot be reflected as the other; the client
// checks the server's proof before it sends its own, so a server without
// the key learns nothing it could use.
const (
	protoVersion  byte = 1
	nonceLen           = 32
	proofLen           = 32
	sessionKeyLen      = 32

	statusReject byte = 0
	statusOK     byte = 1
)

// session holds the ciphers of an authenticated connection.
type session struct{ send, recv cipher.AEAD }

// handshakeSecrets are the per-connection values derived from the key.
type handshakeSecrets struct {
	serverProof, clientProof []byte
	c2s, s2c                 cipher.AEAD
}

func deriveSecrets(key, nonceC, nonceS []byte) (handshakeSecrets, error) {
	salt := make([]byte, 0, 1+2*nonceLen)
	salt = append(salt, protoVersion)
	salt = append(salt, nonceC...)
	salt = append(salt, nonceS...)
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, key, salt, "dsn dht/tcp v1 "+label, sessionKeyLen)
	}
	var s handshakeSecrets
	var err error
	if s.serverProof, err = derive("server proof"); err != nil {
		return s, err
	}
	if s.clientProof, err = derive("client proof"); err != nil {
		return s, err
	}
	if s.c2s, err = newAEAD(derive("client to server")); err != nil {
		return s, err
	}
	s.s2c, err = newAEAD(derive("server to client"))
	return s, err
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
// Errors wrapping dht.ErrUnauthenticated mean the key proof failed; others
// are I/O or protocol errors. The caller sets the deadline.
func clientHandshake(rw io.ReadWriter, key []byte, rnd io.Reader, prefix byte) (session, error) {
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
	nonceS, proofS := reply[1:1+nonceLen], reply[1+nonceLen:]
	sec, err := deriveSecrets(key, nonceC, nonceS)
	if err != nil {
		return session{}, err
	}
	if !hmac.Equal(proofS, sec.serverProof) {
		_, _ = rw.Write([]byte{statusReject})
		return session{}, authError("server could not prove the cluster key")
	}
	if _, err := rw.Write(append([]byte{statusOK}, sec.clientProof...)); err != nil {
		return session{}, err
	}
	var status [1]byte
	if _, err := io.ReadFull(rw, status[:]); err != nil {
		return session{}, err
	}
	if status[0] != statusOK {
		return session{}, authError("server rejected our proof of the cluster key")
	}
	return session{send: sec.c2s, recv: sec.s2c}, nil
}

// serverHandshake runs the answering side on rw, after the prefix byte was
// consumed. Error classes as for clientHandshake.
func serverHandshake(rw io.ReadWriter, key []byte, rnd io.Reader) (session, error) {
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
	nonceC := hello[1:]
	reply := make([]byte, 1+nonceLen, 1+nonceLen+proofLen)
	reply[0] = protoVersion
	nonceS := reply[1:]
	if _, err := io.ReadFull(rnd, nonceS); err != nil {
		return session{}, fmt.Errorf("dht/tcp: handshake: nonce: %w", err)
	}
	sec, err := deriveSecrets(key, nonceC, nonceS)
	if err != nil {
		return session{}, err
	}
	if _, err := rw.Write(append(reply, sec.serverProof...)); err != nil {
		return session{}, err
	}
	var status [1]byte
	if _, err := io.ReadFull(rw, status[:]); err != nil {
		return session{}, err
	}
	if status[0] != statusOK {
		return session{}, authError("client rejected our proof of the cluster key")
	}
	proofC := make([]byte, proofLen)
	if _, err := io.ReadFull(rw, proofC); err != nil {
		return session{}, err
	}
	if !hmac.Equal(proofC, sec.clientProof) {
		_, _ = rw.Write([]byte{statusReject})
		return session{}, authError("client could not prove the cluster key")
	}
	if _, err := rw.Write([]byte{statusOK}); err != nil {
		return session{}, err
	}
	return session{send: sec.s2c, recv: sec.c2s}, nil
}
