package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// Algorithm is a Digest hash algorithm (RFC 7616 section 3.2, RFC 8760 for
// SIP). Its value is the token used in the algorithm parameter.
type Algorithm string

// The supported algorithms. The "-sess" variants and SHA-512-256 are not
// offered: SIP phones rarely implement them.
const (
	MD5    Algorithm = "MD5"
	SHA256 Algorithm = "SHA-256"
)

// Algorithms returns the supported algorithms, strongest first.
func Algorithms() []Algorithm { return []Algorithm{SHA256, MD5} }

// ParseAlgorithm returns the Algorithm named by s, case-insensitively
// ("MD5", "md5", "SHA-256").
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToUpper(s) {
	case "MD5":
		return MD5, nil
	case "SHA-256":
		return SHA256, nil
	}
	return "", fmt.Errorf("%w: %q (want MD5 or SHA-256)", ErrAlgorithm, s)
}

// valid reports whether a is one of the supported algorithms.
func (a Algorithm) valid() bool { return a == MD5 || a == SHA256 }

func (a Algorithm) newHash() hash.Hash {
	if a == SHA256 {
		return sha256.New()
	}
	return md5.New()
}

// hexLen is the length of a hash of a in lower-case hex.
func (a Algorithm) hexLen() int {
	if a == SHA256 {
		return 2 * sha256.Size
	}
	return 2 * md5.Size
}

// hashJoin returns the lower-case hex hash of the parts joined by ":", the
// H(a:b:c) / KD(secret, data) of RFC 7616 section 3.4.
func (a Algorithm) hashJoin(parts ...string) string {
	h := a.newHash()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HA1 returns H(username:realm:password) in lower-case hex: the value the
// credentials file stores (RFC 7616 section 3.4.2, A1 for a non-"-sess"
// algorithm). It is a password equivalent for that realm: keep it secret.
func HA1(user, realm, password string, alg Algorithm) (string, error) {
	if !alg.valid() {
		return "", fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	return alg.hashJoin(user, realm, password), nil
}

// digestResponse computes the request-digest of RFC 7616 section 3.4.1
// (RFC 2617 section 3.2.2.1) from the stored HA1: with qop "auth"
// KD(HA1, nonce:nc:cnonce:qop:HA2), without qop (RFC 2069)
// KD(HA1, nonce:HA2), where HA2 = H(method:uri). nc is the 8 hex digits
// as sent.
func digestResponse(alg Algorithm, ha1, nonce, nc, cnonce, qop, method, uri string) string {
	ha2 := alg.hashJoin(method, uri)
	if qop == "" {
		return alg.hashJoin(ha1, nonce, ha2)
	}
	return alg.hashJoin(ha1, nonce, nc, cnonce, qop, ha2)
}

// ParseAlgorithmList parses a comma-separated list of algorithms in the
// order they are to be offered ("SHA-256,MD5", the -auth-algorithms flag).
// White space around names is ignored; an empty list, an unknown name or a
// name listed twice is an error wrapping ErrAlgorithm.
func ParseAlgorithmList(s string) ([]Algorithm, error) {
	var out []Algorithm
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := ParseAlgorithm(f)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("%w: %s listed twice", ErrAlgorithm, a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty list (want e.g. SHA-256,MD5)", ErrAlgorithm)
	}
	return out, nil
}
