package auth

import "errors"

// Sentinel errors callers branch on; every error this package returns wraps
// one of them (or an error from the operating system) and carries the
// "auth: " prefix.
var (
	// ErrInvalidConfig: Config.Validate or New rejected the configuration.
	ErrInvalidConfig = errors.New("auth: invalid config")
	// ErrCredentials: a line of the credentials file (-auth-file) is not
	// "user realm hash" (the message names the file and line), or HA1Line
	// was given a user name or realm that cannot be written in the file.
	ErrCredentials = errors.New("auth: bad credentials entry")
	// ErrInsecureFile: the credentials file can be read by its group or by
	// everyone. It is a warning, not a failure: Store.Warnings reports it.
	ErrInsecureFile = errors.New("auth: credentials file readable by group or others")
	// ErrTrusted: a -trusted list entry is not an IP address or CIDR
	// prefix, or is too broad.
	ErrTrusted = errors.New("auth: bad trusted network")
	// ErrMalformed: an Authorization header field value is not valid
	// Digest credentials (RFC 7616 section 3.4, RFC 3261 section 25.1).
	ErrMalformed = errors.New("auth: malformed credentials")
	// ErrAlgorithm: an algorithm name is not MD5 or SHA-256.
	ErrAlgorithm = errors.New("auth: unsupported algorithm")
)
