package dnsreport

import (
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// Key is a TSIG key (RFC 8945): the key name, the HMAC algorithm and the
// shared secret. Name and Algorithm are kept in the canonical form miekg/dns
// uses on the wire (lower case, fully qualified: "dsn-key.",
// "hmac-sha256."); Secret is the base64 text exactly as BIND writes it.
type Key struct {
	Name      string
	Algorithm string
	Secret    string
}

// DefaultAlgorithm is used when a key file names no algorithm and by
// GenerateKey when it is given "".
const DefaultAlgorithm = dns.HmacSHA256

// algorithmInfo maps an accepted algorithm name (BIND spelling, lower
// case, no trailing dot) to miekg's constant and the secret size
// tsig-keygen generates for it.
func algorithmInfo(name string) (wire string, secretSize int, ok bool) {
	switch name {
	case "hmac-sha1":
		return dns.HmacSHA1, 20, true
	case "hmac-sha224":
		return dns.HmacSHA224, 28, true
	case "hmac-sha256":
		return dns.HmacSHA256, 32, true
	case "hmac-sha384":
		return dns.HmacSHA384, 48, true
	case "hmac-sha512":
		return dns.HmacSHA512, 64, true
	}
	return "", 0, false
}

// canonicalAlgorithm maps "HMAC-SHA256", "hmac-sha256." and the like to
// miekg's constant; "" means DefaultAlgorithm.
func canonicalAlgorithm(alg string) (string, error) {
	a := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(alg)), ".")
	if a == "" {
		return DefaultAlgorithm, nil
	}
	if wire, _, ok := algorithmInfo(a); ok {
		return wire, nil
	}
	if strings.HasPrefix(a, "hmac-md5") {
		return "", fmt.Errorf("algorithm %q is not supported (HMAC-MD5 is obsolete); generate a new key with: tsig-keygen -a hmac-sha256", alg)
	}
	return "", fmt.Errorf("algorithm %q is not supported; use hmac-sha256 (default), hmac-sha1, hmac-sha224, hmac-sha384 or hmac-sha512", alg)
}

// Validate checks that the key is usable: a valid domain name, a supported
// algorithm and a non-empty base64 secret.
func (k Key) Validate() error {
	if k.Name == "" {
		return fmt.Errorf("dnsreport: TSIG key has no name")
	}
	if _, ok := dns.IsDomainName(k.Name); !ok || strings.Contains(k.Name, "..") {
		return fmt.Errorf("dnsreport: TSIG key name %q is not a valid domain name", k.Name)
	}
	for _, c := range k.Name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("dnsreport: TSIG key name %q: use only letters, digits, '-', '_' and '.'", k.Name)
		}
	}
	if _, err := canonicalAlgorithm(k.Algorithm); err != nil {
		return fmt.Errorf("dnsreport: TSIG key %q: %w", k.Name, err)
	}
	if err := checkSecret(k.Secret); err != nil {
		return fmt.Errorf("dnsreport: TSIG key %q: %w", k.Name, err)
	}
	return nil
}

func checkSecret(s string) error {
	if s == "" {
		return fmt.Errorf("secret is empty")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("secret is not valid base64: %v", err)
	}
	if len(raw) == 0 {
		return fmt.Errorf("secret decodes to zero bytes")
	}
	return nil
}

// NewKey builds a validated Key from the parts in any accepted spelling
// ("name" or "name.", "HMAC-SHA256" or "hmac-sha256.").
func NewKey(name, algorithm, secret string) (Key, error) {
	alg, err := canonicalAlgorithm(algorithm)
	if err != nil {
		return Key{}, fmt.Errorf("dnsreport: TSIG key %q: %w", name, err)
	}
	k := Key{Name: dns.CanonicalName(strings.TrimSpace(name)), Algorithm: alg, Secret: strings.TrimSpace(secret)}
	if strings.TrimSpace(name) == "" {
		k.Name = ""
	}
	return k, k.Validate()
}

// GenerateKey makes a new key with a random secret of the algorithm's hash
// size, as tsig-keygen does. algorithm "" means DefaultAlgorithm. random is
// normally crypto/rand.Reader.
func GenerateKey(name, algorithm string, random io.Reader) (Key, error) {
	alg, err := canonicalAlgorithm(algorithm)
	if err != nil {
		return Key{}, fmt.Errorf("dnsreport: generate key %q: %w", name, err)
	}
	_, size, _ := algorithmInfo(strings.TrimSuffix(alg, "."))
	raw := make([]byte, size)
	if _, err := io.ReadFull(random, raw); err != nil {
		return Key{}, fmt.Errorf("dnsreport: generate key %q: read random: %w", name, err)
	}
	return NewKey(name, alg, base64.StdEncoding.EncodeToString(raw))
}

// BINDFormat renders the key the way tsig-keygen writes it, ready to be
// included in named.conf or passed to nsupdate -k.
func (k Key) BINDFormat() string {
	return fmt.Sprintf("key \"%s\" {\n\talgorithm %s;\n\tsecret \"%s\";\n};\n",
		strings.TrimSuffix(k.Name, "."), strings.TrimSuffix(k.Algorithm, "."), k.Secret)
}

// String names the key without its secret, for logs.
func (k Key) String() string {
	return fmt.Sprintf("%s (%s)", k.Name, strings.TrimSuffix(k.Algorithm, "."))
}

// KeyFileWarning reports a key file that others than its owner can read.
// The key is still loaded; the caller logs the warning.
type KeyFileWarning struct {
	Path string
	Mode fs.FileMode
}

func (w *KeyFileWarning) String() string {
	return fmt.Sprintf("dnsreport: TSIG key file %s has mode %04o and is readable by group or others; restrict it with: chmod 600 %s",
		w.Path, w.Mode.Perm(), w.Path)
}

// LoadKeyFile reads every key of a BIND key file. The warning is non-nil
// when the file is group- or world-readable.
func LoadKeyFile(path string) ([]Key, *KeyFileWarning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsreport: read TSIG key file: %w", err)
	}
	var warn *KeyFileWarning
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o044 != 0 {
		warn = &KeyFileWarning{Path: path, Mode: st.Mode()}
	}
	keys, err := ParseKeys(path, data)
	if err != nil {
		return nil, warn, err
	}
	return keys, warn, nil
}

// SelectKey picks the key called name from keys; name "" picks the only
// key and is an error when there are several.
func SelectKey(keys []Key, name string) (Key, error) {
	if name == "" {
		switch len(keys) {
		case 0:
			return Key{}, fmt.Errorf("dnsreport: no TSIG key given")
		case 1:
			return keys[0], nil
		}
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		return Key{}, fmt.Errorf("dnsreport: %d TSIG keys given (%s); say which one to use", len(keys), strings.Join(names, ", "))
	}
	want := dns.CanonicalName(name)
	for _, k := range keys {
		if k.Name == want {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("dnsreport: no TSIG key named %q", name)
}
