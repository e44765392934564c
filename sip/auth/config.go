package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config holds the Digest authenticator's tunables. Dependencies (the
// Store, the Trusted set, clock, randomness, logger) are arguments of New.
type Config struct {
	// Realm is the realm of every challenge, and credentials of this realm
	// may register AORs in any domain the registrar serves. "" means the
	// host of the REGISTER's Request-URI, lower-cased: the SIP domain (the
	// registrar has checked it is one of its domains), so credentials of a
	// realm are good for AORs of the domain of the same name. The node sets
	// it to -domain, so that phones registering to an IP literal listed as
	// a domain use the same credentials. It must contain no '"', '\', '@'
	// or control characters.
	Realm string
	// NonceLifetime is how long a nonce is accepted after it was issued. A
	// request with an older nonce but correct credentials is answered with
	// a fresh challenge carrying stale=true, which phones answer without
	// asking the user. Phones refresh registrations far less often, so
	// each refresh costs one challenge round trip; that is intended.
	NonceLifetime time.Duration
	// MaxNonces bounds the replay tracker: how many nonces used within
	// their lifetime are remembered with their highest nonce count. Only
	// requests that passed the response check take space. When it is full
	// the oldest entry is forgotten and its nonce, and every older one,
	// answered as stale from then on: a bound on memory, never a hole for
	// replays. Size it above the REGISTERs expected per NonceLifetime.
	MaxNonces int
	// Algorithms are offered in this order, strongest first, one
	// WWW-Authenticate header each (RFC 8760 section 2.4); a response with
	// another algorithm is refused. Default SHA-256 then MD5: RFC 8760
	// phones take the first they implement, most still pick MD5. Clients
	// that read only the first challenge and lack SHA-256 (SIPp 3.6, old
	// phones) fail with that order: list MD5 first, or alone, for them.
	Algorithms []Algorithm
	// AllowNoQOP accepts RFC 2069-style responses without qop (old
	// phones). They carry no nonce count, so such a nonce is good for one
	// request; the next one is answered stale=true.
	AllowNoQOP bool
}

// DefaultConfig returns production defaults: Realm "" (the request's
// domain), 5-minute nonces, 65536 tracked nonces, SHA-256 and MD5, legacy
// responses accepted.
func DefaultConfig() Config {
	return Config{
		NonceLifetime: 5 * time.Minute,
		MaxNonces:     1 << 16,
		Algorithms:    Algorithms(),
		AllowNoQOP:    true,
	}
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	if c.Realm != "" {
		if err := checkName("realm", c.Realm); err != nil {
			return fmt.Errorf("%w: Realm: %w", ErrInvalidConfig, err)
		}
		if strings.Contains(c.Realm, "@") {
			return fmt.Errorf("%w: Realm %q contains '@'", ErrInvalidConfig, c.Realm)
		}
	}
	if c.NonceLifetime < time.Second || c.NonceLifetime > 24*time.Hour {
		return fmt.Errorf("%w: NonceLifetime = %v, want 1s..24h", ErrInvalidConfig, c.NonceLifetime)
	}
	if c.MaxNonces < 1 || c.MaxNonces > 1<<24 {
		return fmt.Errorf("%w: MaxNonces = %d, want 1..%d", ErrInvalidConfig, c.MaxNonces, 1<<24)
	}
	if len(c.Algorithms) == 0 {
		return fmt.Errorf("%w: Algorithms is empty", ErrInvalidConfig)
	}
	for i, a := range c.Algorithms {
		if !a.valid() {
			return fmt.Errorf("%w: Algorithms[%d] = %q, want MD5 or SHA-256", ErrInvalidConfig, i, a)
		}
		if slices.Contains(c.Algorithms[:i], a) {
			return fmt.Errorf("%w: Algorithms lists %s twice", ErrInvalidConfig, a)
		}
	}
	return nil
}
