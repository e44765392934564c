package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Nonces are stateless: the node keeps nothing per challenge. A nonce is
// base64url (no padding) of
//
//	issued (8 bytes, Unix nanoseconds, big endian) | random (8) | mac (16)
//
// where mac is HMAC-SHA-256 over a label, the realm and the first 16 bytes,
// keyed with the node's secret, truncated to 16 bytes. Only this node (or
// one sharing its secret) can make a nonce that checks; the realm binding
// keeps a nonce of one realm from being used in another. The first 16
// bytes order nonces by issue time and serve as the replay tracker's key.
const (
	nonceStampLen = 8 + 8
	nonceMACLen   = 16
	nonceRawLen   = nonceStampLen + nonceMACLen
	secretLen     = 32
)

// nonceKey is the issue time and random part of a nonce; comparing keys
// byte-wise orders nonces by issue time.
type nonceKey [nonceStampLen]byte

func (k nonceKey) less(o nonceKey) bool { return bytes.Compare(k[:], o[:]) < 0 }

// issued is when the nonce was made.
func (k nonceKey) issued() time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
}

// nonceSigner makes and checks nonces with one secret. Immutable; safe for
// concurrent use.
type nonceSigner struct {
	secret [secretLen]byte
	opaque string
}

func newNonceSigner(secret [secretLen]byte) *nonceSigner {
	s := &nonceSigner{secret: secret}
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("dsn-auth-opaque"))
	s.opaque = hex.EncodeToString(m.Sum(nil)[:8])
	return s
}

// issue returns a nonce for realm made at now with 8 random bytes rnd.
func (s *nonceSigner) issue(realm string, now time.Time, rnd [8]byte) string {
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixNano()))
	copy(raw[8:16], rnd[:])
	copy(raw[nonceStampLen:], s.mac(realm, raw[:nonceStampLen]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// check returns the key of nonce if this signer made it for realm.
func (s *nonceSigner) check(nonce, realm string) (nonceKey, bool) {
	var raw [nonceRawLen]byte
	if base64.RawURLEncoding.EncodedLen(nonceRawLen) != len(nonce) {
		return nonceKey{}, false
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil || n != nonceRawLen {
		return nonceKey{}, false
	}
	if !hmac.Equal(raw[nonceStampLen:], s.mac(realm, raw[:nonceStampLen])) {
		return nonceKey{}, false
	}
	var k nonceKey
	copy(k[:], raw[:nonceStampLen])
	return k, true
}

func (s *nonceSigner) mac(realm string, stamp []byte) []byte {
	m := hmac.New(sha256.New, s.secret[:])
	m.Write([]byte("dsn-auth-nonce\x00"))
	m.Write([]byte(realm))
	m.Write([]byte{0})
	m.Write(stamp)
	return m.Sum(nil)[:nonceMACLen]
}
