package dht

import "errors"

// Sentinel errors callers branch on. Transports preserve them across the
// wire so errors.Is works on the calling side.
var (
	// ErrUnreachable: the peer did not answer (down, cut off, or timed out).
	ErrUnreachable = errors.New("dht: peer unreachable")
	// ErrNotOwner: the asked node does not own the key (routing was stale);
	// the caller looks the owner up again.
	ErrNotOwner = errors.New("dht: not the owner of the key")
	// ErrConflict: a conditional put found a different current version.
	ErrConflict = errors.New("dht: version conflict")
	// ErrNotFound: no live record for the key.
	ErrNotFound = errors.New("dht: not found")
	// ErrLookupFailed: a lookup could not reach the owner within its hop
	// and retry budget.
	ErrLookupFailed = errors.New("dht: lookup failed")
	// ErrStopped: the node has left the ring or was shut down.
	ErrStopped = errors.New("dht: node stopped")
	// ErrUnauthenticated: the peer could not prove it holds the cluster key.
	ErrUnauthenticated = errors.New("dht: peer not authenticated")
)
