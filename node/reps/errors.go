package reps

import "errors"

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrLeaving: Leave was called; the node no longer takes part in
	// elections.
	ErrLeaving = errors.New("reps: node is leaving")
	// ErrBadSIPAddr: a peer's SIP address (dht.Peer.Meta) cannot be
	// published.
	ErrBadSIPAddr = errors.New("reps: bad SIP address")
)
