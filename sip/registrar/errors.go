package registrar

import "errors"

// Sentinel errors callers branch on; every error this package returns wraps
// one of them or an error from a dependency, with a "registrar: " prefix.
var (
	// ErrConflict: a conditional BindingStore.Put found a different current
	// version (another node wrote the AOR in between). The registrar
	// re-reads and retries up to Config.MaxConflictRetries times.
	ErrConflict = errors.New("registrar: version conflict")
	// ErrNotFound: Lookup found no record for the AOR: it was never
	// registered, or not within Config.RecordLinger. A proxy answers 404.
	ErrNotFound = errors.New("registrar: no registration record")
	// ErrNoBindings: Lookup found the AOR's record but no live binding in
	// it (unregistered or expired recently). A proxy answers 480.
	ErrNoBindings = errors.New("registrar: no live binding")
	// ErrInvalidAOR: the URI cannot be an address-of-record (not sip/sips,
	// no user part, no host, bad escape).
	ErrInvalidAOR = errors.New("registrar: invalid address-of-record")
	// ErrMalformed: UnmarshalBindings was given bytes that are not a valid
	// encoding, or MarshalBindings a set that exceeds the format's bounds.
	ErrMalformed = errors.New("registrar: malformed binding set")
	// ErrInvalidConfig: Config.Validate or New rejected the configuration.
	ErrInvalidConfig = errors.New("registrar: invalid config")
)
