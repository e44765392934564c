package registrar

import (
	"fmt"
	"time"
)

// Config holds the registrar's tunables. Dependencies (the BindingStore,
// clock, logger, hooks) are constructor arguments, not configuration.
type Config struct {
	// Domains are the SIP domains this registrar keeps bindings for. A
	// REGISTER whose Request-URI names another host is answered 404, as is
	// an address-of-record outside the Request-URI's domain. Matching is
	// case-insensitive; list IP literals here too if phones register to
	// the node's address instead of the domain name.
	Domains []string
	// DefaultExpires is the lifetime of a contact whose REGISTER gives
	// neither an expires parameter nor an Expires header.
	DefaultExpires time.Duration
	// MinExpires is the shortest non-zero lifetime accepted; shorter
	// requests get 423 (Interval Too Brief) with a Min-Expires header. It
	// must stay below one hour, the bound RFC 3261 section 10.3 step 7 puts
	// on 423.
	MinExpires time.Duration
	// MaxExpires caps the lifetime granted; longer requests are shortened.
	MaxExpires time.Duration
	// MaxContactsPerAOR bounds the live bindings of one AOR. A REGISTER that
	// would grow an AOR past it is refused with 403 (existing bindings can
	// always be refreshed or removed). At most MaxBindings.
	MaxContactsPerAOR int
	// MaxConflictRetries is how many times a REGISTER re-reads and rewrites
	// an AOR after a conflicting concurrent write before it gives up with
	// 500 and Retry-After.
	MaxConflictRetries int
	// RecordLinger is how long an AOR's record is kept after its last
	// binding expired or was removed, with an empty contact list, so that
	// Lookup can tell "registered recently but offline" (ErrNoBindings, a
	// proxy answers 480) from "unknown" (ErrNotFound, 404). Zero deletes
	// the record with its last binding.
	RecordLinger time.Duration
	// RetryAfter is the Retry-After sent with a 500 caused by the binding
	// store (unreachable, or conflicts beyond MaxConflictRetries).
	RetryAfter time.Duration
	// RequestTimeout bounds the store work of one REGISTER handled through
	// ServeSIP (Handle takes the caller's context as it is). Keep it well
	// below SIP timer F (32 s) so the UA gets an answer.
	RequestTimeout time.Duration
}

// DefaultConfig returns production defaults. Domains is empty and must be
// set before Validate passes.
func DefaultConfig() Config {
	return Config{
		DefaultExpires:     3600 * time.Second,
		MinExpires:         60 * time.Second,
		MaxExpires:         7200 * time.Second,
		MaxContactsPerAOR:  10,
		MaxConflictRetries: 8,
		RecordLinger:       24 * time.Hour,
		RetryAfter:         5 * time.Second,
		RequestTimeout:     5 * time.Second,
	}
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	if len(c.Domains) == 0 {
		return fmt.Errorf("%w: Domains is empty", ErrInvalidConfig)
	}
	for _, d := range c.Domains {
		if !validDomain(d) {
			return fmt.Errorf("%w: bad domain %q", ErrInvalidConfig, d)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"DefaultExpires", c.DefaultExpires},
		{"MinExpires", c.MinExpires},
		{"MaxExpires", c.MaxExpires},
		{"RetryAfter", c.RetryAfter},
	}
	for _, d := range durations {
		if d.v <= 0 || d.v%time.Second != 0 {
			return fmt.Errorf("%w: %s = %v, want a positive whole number of seconds", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.MinExpires >= time.Hour {
		return fmt.Errorf("%w: MinExpires = %v, want < 1h (RFC 3261 10.3 step 7)", ErrInvalidConfig, c.MinExpires)
	}
	if c.MinExpires > c.DefaultExpires || c.DefaultExpires > c.MaxExpires {
		return fmt.Errorf("%w: want MinExpires <= DefaultExpires <= MaxExpires, have %v, %v, %v",
			ErrInvalidConfig, c.MinExpires, c.DefaultExpires, c.MaxExpires)
	}
	if c.MaxContactsPerAOR < 1 || c.MaxContactsPerAOR > MaxBindings {
		return fmt.Errorf("%w: MaxContactsPerAOR = %d, want 1..%d", ErrInvalidConfig, c.MaxContactsPerAOR, MaxBindings)
	}
	if c.MaxConflictRetries < 0 || c.MaxConflictRetries > 1000 {
		return fmt.Errorf("%w: MaxConflictRetries = %d, want 0..1000", ErrInvalidConfig, c.MaxConflictRetries)
	}
	if c.RecordLinger < 0 {
		return fmt.Errorf("%w: RecordLinger = %v, want >= 0", ErrInvalidConfig, c.RecordLinger)
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("%w: RequestTimeout = %v, want > 0", ErrInvalidConfig, c.RequestTimeout)
	}
	return nil
}
