package overload

import "errors"

// Sentinel errors; every error this package returns wraps one of them or
// a network error, with an "overload: " prefix.
var (
	// ErrInvalidConfig: Config.Validate or New rejected the configuration
	// or the dependencies.
	ErrInvalidConfig = errors.New("overload: invalid config")
	// ErrMessageTooLarge: a TCP peer sent a message over Config.MaxMessage;
	// the connection was closed after a 513.
	ErrMessageTooLarge = errors.New("overload: message too large")
	// ErrMalformed: a TCP peer sent bytes that cannot be framed as SIP (no
	// start line, no or a bad Content-Length); the connection was closed.
	ErrMalformed = errors.New("overload: malformed message")
	// ErrMessageTimeout: a TCP peer did not complete a message within
	// Config.MessageTimeout; the connection was closed.
	ErrMessageTimeout = errors.New("overload: message not complete in time")
	// ErrIdleTimeout: nothing arrived on a TCP connection for
	// Config.IdleTimeout; the connection was closed.
	ErrIdleTimeout = errors.New("overload: connection idle")
)
