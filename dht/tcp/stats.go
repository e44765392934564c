package tcp

import "sync/atomic"

// Stats is a snapshot of the transport's counters, all cumulative since New.
type Stats struct {
	// Dials counts outgoing DHT connections attempted; DialFailures those
	// that did not end in an authenticated connection.
	Dials, DialFailures uint64
	// Accepted counts incoming DHT connections that authenticated.
	Accepted uint64
	// HandshakesRejected counts handshakes, in either role, that failed on
	// the cluster key: the peer's proof was wrong or it rejected ours.
	HandshakesRejected uint64
	// SecondaryKeyHandshakes counts handshakes, in either role, that
	// authenticated with a key other than this node's primary: the peer
	// does not hold that key, or it dialed us and prefers another one.
	// During a key rotation it grows while primaries differ between
	// nodes; it must stay flat on every node before the old key is
	// removed.
	SecondaryKeyHandshakes uint64
	// HandshakesFailed counts incoming handshakes that broke off for any
	// other reason: timeout, I/O error, unknown protocol version.
	HandshakesFailed uint64
	// BadPrefix counts incoming TCP connections closed because their first
	// byte named neither a DHT connection nor a memberlist stream.
	BadPrefix uint64
	// BadFrames counts connections closed for an oversized, forged,
	// replayed or malformed frame.
	BadFrames uint64
	// PacketsDropped counts UDP packets dropped because no memberlist was
	// listening; StreamsDropped the same for memberlist streams.
	PacketsDropped, StreamsDropped uint64
}

// counters are the live values behind Stats.
type counters struct {
	dials, dialFailures, accepted        atomic.Uint64
	handshakesRejected, handshakesFailed atomic.Uint64
	secondaryKey                         atomic.Uint64
	badPrefix, badFrames                 atomic.Uint64
	packetsDropped, streamsDropped       atomic.Uint64
}

// Stats returns the current counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		Dials:                  c.dials.Load(),
		DialFailures:           c.dialFailures.Load(),
		Accepted:               c.accepted.Load(),
		HandshakesRejected:     c.handshakesRejected.Load(),
		HandshakesFailed:       c.handshakesFailed.Load(),
		SecondaryKeyHandshakes: c.secondaryKey.Load(),
		BadPrefix:              c.badPrefix.Load(),
		BadFrames:              c.badFrames.Load(),
		PacketsDropped:         c.packetsDropped.Load(),
		StreamsDropped:         c.streamsDropped.Load(),
	}
}
