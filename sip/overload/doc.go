// Package overload keeps a DSN node's SIP service alive beyond its
// capacity: new out-of-dialog requests are answered 503 Service
// Unavailable with Retry-After, statelessly, instead of queueing without
// bound, while calls already accepted go on; oversized and malformed
// input and slow or idle TCP peers cannot exhaust memory or goroutines.
//
// # Where it sits
//
// The gate works below sipgo, on the node's sockets: Gate.PacketConn
// wraps the UDP socket and Gate.Listener the TCP listener that the node
// hands to sipgo's ServeUDP and ServeTCP. sipgo starts a goroutine and a
// server transaction for every request it reads, before any handler runs;
// a request rejected below it costs neither (its retransmissions get the
// same answer, and the ACK of the 503 is absorbed by its To tag, see
// TagPrefix). The proxy and the registrar are not changed.
//
// # The rule (Gate.Decide)
//
// Responses, ACK, CANCEL and in-dialog requests (To tag) always pass:
// shedding them would break accepted calls. A retransmission of a request
// admitted within Config.TrackTTL passes. Any other request (INVITE,
// REGISTER, MESSAGE, SUBSCRIBE, OPTIONS, ... outside a dialog) is
// rejected while the node is at one of its limits: requests in progress
// (Config.MaxInflight), goroutines (Config.MaxGoroutines), scheduling
// delay (Config.MaxQueueDelay: runnable goroutines wait for a CPU), or
// an optional token-bucket rate (Config.Rate, Config.Burst). The load is
// sampled through Deps.Load for each such request.
//
// # Input limits
//
// UDP: a datagram over Config.MaxMessage, or one that fills the read
// buffer (sipgo's is 32 KiB: it may be cut), and a datagram that is not a
// SIP message are dropped and counted. TCP: each connection frames its
// input by Content-Length and holds at most one message of at most
// Config.MaxMessage bytes (bigger: 513 and close; no Content-Length:
// 400 and close); a message must complete within Config.MessageTimeout of
// its first byte, a connection idle between messages for
// Config.IdleTimeout is closed, a write that the peer does not take within
// Config.WriteTimeout closes it, and Config.MaxConns / MaxConnsPerIP bound
// the connections (more are accepted and closed at once). CRLF CRLF
// keep-alives get their CRLF pong (RFC 5626).
//
// # Shape and contract
//
// Gate.Decide is synchronous and deterministic given the load and the
// time; ParseHead, the framer and the response builder are pure
// functions of their input and never panic on any bytes. The wrappers are
// the drivers: their Read/ReadFrom run on the stack's read goroutine (one
// per socket or connection) and do all their work there, with no goroutine
// of their own. A Gate and the wrappers are safe for concurrent use;
// Metrics is called from read goroutines and must not block.
// QueueDelaySampler and Recovery belong to one driver goroutine (the
// node's overload ticker), which samples the scheduling delay and, once
// an overload is over, returns its memory to the OS.
package overload
