package tcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MaxKeys is the most cluster keys a Transport holds at once: the one in
// use plus a few being rotated in or out.
const MaxKeys = 8

// keyring is an immutable, validated list of cluster keys. keys[0] is the
// primary: the key this node prefers, as dialer and as listener. Any key
// in the ring authenticates a peer.
type keyring struct {
	keys [][]byte // private copies
	ids  []string // KeyID of each key, for logs
}

// newKeyring validates keys and copies them.
func newKeyring(keys [][]byte) (*keyring, error) {
	if err := ValidateKeys(keys); err != nil {
		return nil, err
	}
	r := &keyring{keys: make([][]byte, len(keys)), ids: make([]string, len(keys))}
	for i, k := range keys {
		r.keys[i] = bytes.Clone(k)
		r.ids[i] = KeyID(k)
	}
	return r, nil
}

// index returns the position of key in the ring, or -1.
func (r *keyring) index(key []byte) int {
	for i, k := range r.keys {
		if bytes.Equal(k, key) {
			return i
		}
	}
	return -1
}

// ValidateKeys checks a list of cluster keys as New and SetKeys take it:
// 1 to MaxKeys keys, each 16, 24 or 32 bytes (an AES key length, like
// memberlist's keyring, so one key file serves both), no key twice. The
// first key is the primary.
func ValidateKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("dht/tcp: no cluster key")
	}
	if len(keys) > MaxKeys {
		return fmt.Errorf("dht/tcp: %d cluster keys, at most %d", len(keys), MaxKeys)
	}
	for i, k := range keys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("dht/tcp: cluster key %d must be 16, 24 or 32 bytes, got %d", i, len(k))
		}
		for j := range i {
			if bytes.Equal(keys[j], k) {
				return fmt.Errorf("dht/tcp: cluster key %d repeats key %d", i, j)
			}
		}
	}
	return nil
}

// KeyID is a short public fingerprint of a cluster key for logs and
// operators: 8 hex digits of SHA-256 over a fixed label and the key. The
// same key has the same ID on every node, so an operator can check which
// keys a node holds and which one a peer used, without the key itself
// ever being printed.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("dsn cluster key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:4])
}
