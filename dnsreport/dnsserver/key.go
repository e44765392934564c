package dnsserver

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/dsn-ims/dsn/dnsreport"

	"github.com/miekg/dns"
)

// Key is a TSIG key (RFC 8945). It is the UPDATE client's key type, so one
// key file (dnsreport.LoadKeyFile) or generated key (dnsreport.GenerateKey)
// configures both ends.
type Key = dnsreport.Key

// canonicalAlgorithm maps an algorithm spelling to miekg's constant.
func canonicalAlgorithm(alg string) (string, error) {
	if alg == "" {
		return dns.HmacSHA256, nil
	}
	switch a := canonical(alg); a {
	case dns.HmacSHA1, dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
		return a, nil
	}
	return "", fmt.Errorf("unsupported TSIG algorithm %q (want hmac-sha256, hmac-sha1, hmac-sha384 or hmac-sha512)", alg)
}

func hashFor(alg string) func() hash.Hash {
	switch alg {
	case dns.HmacSHA1:
		return sha1.New
	case dns.HmacSHA384:
		return sha512.New384
	case dns.HmacSHA512:
		return sha512.New
	}
	return sha256.New
}

// keyRing is the set of configured keys. It implements dns.TsigProvider and,
// unlike miekg's map-based provider, insists that a message uses the
// algorithm configured for its key: a known name with another algorithm is
// treated as an unknown key (BADKEY), as RFC 8945 section 5.2.1 asks.
type keyRing struct {
	keys map[string]ringKey // by canonical key name
}

type ringKey struct {
	alg    string
	secret []byte
}

var _ dns.TsigProvider = (*keyRing)(nil)

func newKeyRing(keys []Key) (*keyRing, error) {
	r := &keyRing{keys: make(map[string]ringKey, len(keys))}
	for i, k := range keys {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("dnsserver: Keys[%d]: %w", i, err)
		}
		alg, _ := canonicalAlgorithm(k.Algorithm)
		secret, _ := base64.StdEncoding.DecodeString(k.Secret)
		r.keys[canonical(k.Name)] = ringKey{alg: alg, secret: secret}
	}
	return r, nil
}

func (r *keyRing) lookup(t *dns.TSIG) (ringKey, error) {
	k, ok := r.keys[canonical(t.Hdr.Name)]
	if !ok {
		return ringKey{}, dns.ErrSecret
	}
	if canonical(t.Algorithm) != k.alg {
		return ringKey{}, dns.ErrKeyAlg
	}
	return k, nil
}

// Generate implements dns.TsigProvider.
func (r *keyRing) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	k, err := r.lookup(t)
	if err != nil {
		return nil, err
	}
	h := hmac.New(hashFor(k.alg), k.secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify implements dns.TsigProvider. Truncated MACs are not accepted.
func (r *keyRing) Verify(msg []byte, t *dns.TSIG) error {
	want, err := r.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}

// tsigError maps a verification outcome (as reported by
// dns.ResponseWriter.TsigStatus) to the TSIG error code of RFC 8945.
func tsigError(status error) uint16 {
	switch {
	case status == nil:
		return dns.RcodeSuccess
	case errors.Is(status, dns.ErrTime):
		return dns.RcodeBadTime
	case errors.Is(status, dns.ErrSecret), errors.Is(status, dns.ErrKeyAlg):
		return dns.RcodeBadKey
	}
	return dns.RcodeBadSig
}
