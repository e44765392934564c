package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxLineLen bounds one line of the credentials file.
const MaxLineLen = 4096

// Entry is one line of the credentials file: the HA1 of a user in a realm
// for one algorithm. The password itself is never stored.
type Entry struct {
	User      string    // the Digest username (the AOR's user part)
	Realm     string    // the realm challenged for, exactly (normally the SIP domain)
	Algorithm Algorithm // MD5 or SHA-256
	HA1       string    // H(user:realm:password), lower-case hex
	Line      int       // line number in the file; 0 if not read from one
}

// String renders e as a line of the credentials file (no newline):
// "user realm hash" with the hash bare for MD5 and "sha256:"-prefixed for
// SHA-256.
func (e Entry) String() string {
	h := e.HA1
	if e.Algorithm == SHA256 {
		h = "sha256:" + h
	}
	return e.User + " " + e.Realm + " " + h
}

// HA1Line returns the credentials-file line for user in realm with
// password hashed by alg, e.g. HA1Line("alice", "dsn.example.com",
// "secret", SHA256) = "alice dsn.example.com sha256:<64 hex digits>". A
// generator (dsnctl) prints it; the node never needs the password. Give a
// user one line per algorithm so phones that only know MD5 work too.
func HA1Line(user, realm, password string, alg Algorithm) (string, error) {
	if err := checkNames(user, realm); err != nil {
		return "", fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	ha1, err := HA1(user, realm, password, alg)
	if err != nil {
		return "", err
	}
	return Entry{User: user, Realm: realm, Algorithm: alg, HA1: ha1}.String(), nil
}

// ParseFile reads a credentials file. Format, one entry per line:
//
//	# comment; blank lines are ignored
//	user realm hash        # a comment may follow the fields
//
// where hash is the lower- or upper-case hex HA1 = H(user:realm:password):
// 32 digits for MD5 (optionally written "md5:<hex>"), "sha256:" followed by
// 64 digits for SHA-256. user and realm are taken byte for byte (the realm
// must be exactly the one challenged with, normally the SIP domain in
// lower case); neither may contain white space, '"', '\' or control
// characters, and a realm no '@'. Several realms may appear; a user may
// have one line per algorithm in a realm, never two for the same
// algorithm. name labels errors ("creds.txt:7: ..."). Every error wraps
// ErrCredentials.
func ParseFile(r io.Reader, name string) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), MaxLineLen)
	type key struct {
		user, realm string
		alg         Algorithm
	}
	seen := make(map[key]int)
	var out []Entry
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		e, err := parseEntry(fields)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrCredentials, name, n, err)
		}
		e.Line = n
		k := key{e.User, e.Realm, e.Algorithm}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: %s:%d: user %q in realm %q already has a %s hash on line %d",
				ErrCredentials, name, n, e.User, e.Realm, e.Algorithm, prev)
		}
		seen[k] = n
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: %s:%d: line longer than %d bytes", ErrCredentials, name, n+1, MaxLineLen)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCredentials, name, err)
	}
	return out, nil
}

var errLine = errors.New("want \"user realm hash\"")

func parseEntry(fields []string) (Entry, error) {
	if len(fields) != 3 {
		return Entry{}, fmt.Errorf("%w, found %d fields", errLine, len(fields))
	}
	e := Entry{User: fields[0], Realm: fields[1], Algorithm: MD5, HA1: fields[2]}
	if prefix, rest, ok := strings.Cut(e.HA1, ":"); ok {
		switch strings.ToLower(prefix) {
		case "sha256":
			e.Algorithm = SHA256
		case "md5":
		default:
			return Entry{}, fmt.Errorf("hash prefix %q: want sha256: or md5:", prefix+":")
		}
		e.HA1 = rest
	}
	e.HA1 = strings.ToLower(e.HA1)
	return e, validateEntry(e)
}

// validateEntry checks an entry's names, algorithm and hash.
func validateEntry(e Entry) error {
	if err := checkNames(e.User, e.Realm); err != nil {
		return err
	}
	if !e.Algorithm.valid() {
		return fmt.Errorf("algorithm %q: want MD5 or SHA-256", e.Algorithm)
	}
	if len(e.HA1) != e.Algorithm.hexLen() {
		return fmt.Errorf("%s hash has %d characters, want %d hex digits", e.Algorithm, len(e.HA1), e.Algorithm.hexLen())
	}
	for i := 0; i < len(e.HA1); i++ {
		if c := e.HA1[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%s hash is not lower-case hex: %q", e.Algorithm, e.HA1)
		}
	}
	return nil
}

// maxNameLen bounds a user name or realm.
const maxNameLen = 256

// checkNames rejects a user name or realm that cannot be written in the
// file or in a quoted-string without escapes, and a realm with '@' (it
// would make identities ambiguous).
func checkNames(user, realm string) error {
	if err := checkName("user", user); err != nil {
		return err
	}
	if err := checkName("realm", realm); err != nil {
		return err
	}
	if strings.Contains(realm, "@") {
		return fmt.Errorf("realm %q contains '@'", realm)
	}
	return nil
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s longer than %d bytes", what, maxNameLen)
	}
	if s[0] == '#' {
		return fmt.Errorf("%s %q starts with '#', which starts a comment", what, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\\' {
			return fmt.Errorf("%s %q: byte %#02x not allowed", what, s, c)
		}
	}
	return nil
}
