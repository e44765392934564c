package proxy

import "errors"

// Sentinel errors; every error this package returns wraps one of them or a
// dependency's error, with a "proxy: " prefix.
var (
	// ErrInvalidConfig: Config.Validate or New rejected the configuration
	// or the dependencies.
	ErrInvalidConfig = errors.New("proxy: invalid config")
	// ErrRegistered: Register was called a second time.
	ErrRegistered = errors.New("proxy: already registered with a server")
)
