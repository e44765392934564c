package overload

import (
	"fmt"
	"time"
)

// Config holds the admission limits and the input limits of one SIP
// listener pair (UDP and TCP). Dependencies (the load sampler, the clock,
// metrics) are Deps.
type Config struct {
	// MaxInflight is the number of requests being handled (the proxy's
	// and the registrar's handlers that have not returned) at which new
	// out-of-dialog requests are answered 503. A forwarded INVITE counts
	// until its final response, so this also bounds ringing calls.
	MaxInflight int
	// MaxGoroutines is the process's goroutine count at which new
	// out-of-dialog requests are answered 503. sipgo starts a goroutine
	// per received message before any handler runs, so this sees the
	// backlog that MaxInflight cannot, and bounds memory with it.
	MaxGoroutines int
	// MaxQueueDelay is the scheduling delay (how long runnable goroutines
	// waited for a CPU, 99th percentile over the last sample interval) at
	// which new out-of-dialog requests are answered 503: the node is
	// CPU-bound and every admitted request would only wait longer. 0
	// disables the signal.
	MaxQueueDelay time.Duration
	// QueueDelayFor is how long the scheduling delay must stay at
	// MaxQueueDelay before it counts (the driver reports the smallest
	// delay of the sample intervals in it, see Sustained): a garbage
	// collection or a burst that makes goroutines wait once is not a
	// CPU-bound node.
	QueueDelayFor time.Duration
	// MaxHeap is the live heap, in bytes, at which new out-of-dialog
	// requests are answered 503: every admitted call holds state for its
	// transactions' lifetime (sipgo keeps them up to TrackTTL after
	// the final response), so memory grows with the admitted rate, not with
	// the offered one. The process's resident size is about twice the
	// live heap. 0 disables the signal.
	MaxHeap uint64
	// Rate is the number of new out-of-dialog requests per second the
	// node admits (token bucket); 0 means no rate limit.
	Rate float64
	// Burst is the token bucket's size: how many new requests may arrive
	// at once above Rate. Ignored when Rate is 0.
	Burst int
	// RetryAfter is the Retry-After of a 503 sent for overload, in whole
	// seconds.
	RetryAfter time.Duration
	// MaxTransactions bounds the transaction window: the requests the
	// gate handed to the SIP stack in the last TrackTTL (retransmissions
	// count once), each weighing 1 and 1 more for every 2 KiB of its
	// size. Each of them holds a server transaction, and its forwarded
	// copy a client transaction and the proxy's call state, for up to
	// TrackTTL after its final response; so this bounds the memory of
	// calls whatever the offered load (11-14 KiB of live heap per unit
	// for calls as bench/overload makes them). New out-of-dialog requests
	// may take half of it, paced: an eighth at once, then three eighths
	// per TrackTTL (so at most 3*MaxTransactions/(8*TrackTTL) a second
	// sustained: 768/s for 65,536); beyond, 503. Requests inside a dialog
	// and CANCELs may fill it, so that calls already accepted can end.
	MaxTransactions int
	// TrackTTL is how long a request stays in the transaction window:
	// the longest sipgo keeps its transaction after the final response
	// (RFC 3261: 64*T1 = 32 s over UDP, the default; dsn-node sets it
	// and sipgo's timers from -sip-tx-linger).
	// Retransmissions of a request in the window are admitted while the
	// node sheds load.
	TrackTTL time.Duration
	// ReleaseAfter is how often, starting this long after the last
	// request shed for overload and for 12 rounds, the node returns the
	// memory the overload took to the operating system (see Recovery).
	// 0 disables it.
	ReleaseAfter time.Duration
	// MaxMessage is the largest SIP message accepted, in bytes (headers
	// and body). Bigger UDP datagrams are dropped; over TCP the request
	// is answered 513 and the connection closed (there is no message
	// boundary left to resume at).
	MaxMessage int
	// UDPReadBuffer is the receive buffer asked for the UDP socket
	// (SO_RCVBUF, capped by the kernel's net.core.rmem_max), so that a
	// burst waits for the gate instead of being dropped by the kernel,
	// responses and in-dialog requests with it. 0 keeps the OS default.
	UDPReadBuffer int
	// UDPReaders is how many goroutines of the SIP stack read the UDP
	// socket's datagrams, parsing them in parallel (Gate.PacketConns); 0
	// means one per CPU (GOMAXPROCS).
	UDPReaders int
	// MaxConns bounds the inbound TCP connections held at once; a further
	// connection is accepted and closed at once.
	MaxConns int
	// MaxConnsPerIP bounds the inbound TCP connections from one source IP
	// address; 0 means only MaxConns applies.
	MaxConnsPerIP int
	// IdleTimeout closes an inbound TCP connection on which nothing
	// arrived for this long between messages (phones keep their flow
	// open with CRLF keep-alives, RFC 5626: every 95-120 s).
	IdleTimeout time.Duration
	// MessageTimeout closes an inbound TCP connection whose current
	// message has not arrived completely this long after its first byte,
	// however slowly it trickles (slowloris).
	MessageTimeout time.Duration
	// WriteTimeout bounds one write to an inbound TCP connection; a peer
	// that does not read its responses is disconnected.
	WriteTimeout time.Duration
}

// DefaultConfig returns production defaults. The admission limits are
// sized from the capacity measured in bench/overload (one node on 2
// cores): a CPU-bound node starts shedding when runnable goroutines wait
// 50 ms, long before the hard bounds. The memory bounds here (a 1 GiB
// live heap, a window of 65,536: 8,192 new requests at once and 768 a
// second after that) suit a small machine; dsn-node sizes them from its
// memory limit instead (ForMemory, -memory-limit).
func DefaultConfig() Config {
	return Config{
		MaxInflight:     2000,
		MaxGoroutines:   10000,
		MaxQueueDelay:   50 * time.Millisecond,
		QueueDelayFor:   time.Second,
		MaxHeap:         1 << 30,
		RetryAfter:      5 * time.Second,
		MaxTransactions: 1 << 16,
		TrackTTL:        32 * time.Second,
		ReleaseAfter:    10 * time.Second,
		MaxMessage:      65535,
		UDPReadBuffer:   4 << 20,
		MaxConns:        4096,
		MaxConnsPerIP:   256,
		IdleTimeout:     5 * time.Minute,
		MessageTimeout:  10 * time.Second,
		WriteTimeout:    10 * time.Second,
	}
}

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrInvalidConfig}, a...)...) }
	switch {
	case c.MaxInflight < 1:
		return bad("MaxInflight = %d, want >= 1", c.MaxInflight)
	case c.MaxGoroutines < 1:
		return bad("MaxGoroutines = %d, want >= 1", c.MaxGoroutines)
	case c.MaxQueueDelay < 0:
		return bad("MaxQueueDelay = %v, want >= 0", c.MaxQueueDelay)
	case c.QueueDelayFor < 0:
		return bad("QueueDelayFor = %v, want >= 0", c.QueueDelayFor)
	case c.Rate < 0:
		return bad("Rate = %v, want >= 0", c.Rate)
	case c.Rate > 0 && c.Burst < 1:
		return bad("Burst = %d, want >= 1 with a Rate", c.Burst)
	case c.RetryAfter < time.Second || c.RetryAfter%time.Second != 0:
		return bad("RetryAfter = %v, want whole seconds >= 1s", c.RetryAfter)
	case c.TrackTTL <= 0:
		return bad("TrackTTL = %v, want > 0", c.TrackTTL)
	case c.MaxTransactions < 8*weight(c.MaxMessage):
		return bad("MaxTransactions = %d, want >= %d (new requests may take an eighth at once; a request of MaxMessage bytes weighs %d)",
			c.MaxTransactions, 8*weight(c.MaxMessage), weight(c.MaxMessage))
	case c.ReleaseAfter < 0:
		return bad("ReleaseAfter = %v, want >= 0", c.ReleaseAfter)
	case c.MaxMessage < 1024:
		return bad("MaxMessage = %d, want >= 1024", c.MaxMessage)
	case c.UDPReadBuffer < 0:
		return bad("UDPReadBuffer = %d, want >= 0", c.UDPReadBuffer)
	case c.UDPReaders < 0 || c.UDPReaders > 256:
		return bad("UDPReaders = %d, want 0 (one per CPU) to 256", c.UDPReaders)
	case c.MaxConns < 1:
		return bad("MaxConns = %d, want >= 1", c.MaxConns)
	case c.MaxConnsPerIP < 0 || c.MaxConnsPerIP > c.MaxConns:
		return bad("MaxConnsPerIP = %d, want 0..MaxConns (%d)", c.MaxConnsPerIP, c.MaxConns)
	case c.IdleTimeout <= 0 || c.MessageTimeout <= 0 || c.WriteTimeout <= 0:
		return bad("IdleTimeout, MessageTimeout and WriteTimeout must be > 0 (got %v, %v, %v)",
			c.IdleTimeout, c.MessageTimeout, c.WriteTimeout)
	case c.MessageTimeout > c.IdleTimeout:
		return bad("MessageTimeout %v > IdleTimeout %v", c.MessageTimeout, c.IdleTimeout)
	}
	return nil
}

// UnitBytes is the live heap one unit of the transaction window stands
// for when the window is sized from a memory budget (ForMemory): a call
// (INVITE and BYE, each a server and a client transaction kept 32 s
// after its final response, 2 units) held 21 KiB of live heap in
// bench/kamailio, 10.7 KiB a unit; bigger messages weigh more units.
const UnitBytes = 12 << 10

// ForMemory returns c with its memory bounds sized from limit, the
// process's memory limit in bytes (the Go runtime's soft limit): new
// out-of-dialog requests are shed once the live heap reaches half of it
// (MaxHeap), which leaves the collector the other half, and the
// transaction window holds what that half holds (MaxTransactions =
// limit/2 / UnitBytes, at least what Validate needs). A limit of 0
// returns c unchanged.
func (c Config) ForMemory(limit uint64) Config {
	if limit == 0 {
		return c
	}
	c.MaxHeap = limit / 2
	c.MaxTransactions = max(int(min(c.MaxHeap/UnitBytes, 1<<30)), 8*weight(c.MaxMessage))
	return c
}
