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
// Gate.PacketConns splits the UDP socket into lanes by Call-ID, one
// sipgo reader each, so that sipgo parses datagrams in parallel while a
// call's messages keep their order.
//
// # The rule (Gate.Decide)
//
// Responses and ACKs always pass: shedding them would break accepted
// calls, and they open no transaction that outlives its handler. Every
// other request the gate hands to sipgo opens a server transaction that
// sipgo keeps after its final response, up to 64*T1 = 32 s by RFC 3261
// (Config.TrackTTL; dsn-node's -sip-tx-linger, 5 s) (with, for a
// forwarded request, a client transaction and the proxy's call state):
// that, not the offered load, is what a node's memory grows with. So the
// gate keeps a transaction window: the requests it passed in the last
// Config.TrackTTL, by transaction identity (top Via, Call-ID, CSeq,
// method), each weighing 1 and 1 more per 2 KiB of its size. A request
// already in it is a retransmission and passes (also while shedding),
// as does the CANCEL of an INVITE in it; a retransmission of a request
// the gate rejected in the last 8 s is rejected again (reason repeat),
// so that a copy sent before the 503 arrived cannot start the call once
// the node stops shedding. Requests inside a dialog (To
// tag) and CANCELs pass while the window is below
// Config.MaxTransactions. Any other request (INVITE, REGISTER, MESSAGE,
// SUBSCRIBE, OPTIONS, ... outside a dialog) is paced into the window (an
// eighth of it at once, then three eighths per TrackTTL, so that new
// requests never take more than half and a sustained overload is
// admitted steadily rather than in bursts), and rejected beyond that pace
// and while the node is at one of its other limits: requests in progress (Config.MaxInflight), goroutines
// (Config.MaxGoroutines), scheduling delay (Config.MaxQueueDelay:
// runnable goroutines keep waiting for a CPU, for Config.QueueDelayFor),
// live heap (Config.MaxHeap), or an
// optional token-bucket rate (Config.Rate, Config.Burst). The load is
// sampled through Deps.Load for each such request. Every rejection is
// counted by Metrics.Rejected with its reason.
//
// A request a Stateless serves (the node's REGISTER over UDP) is not
// handed to sipgo and opens no transaction: DecideStateless applies the
// load limits and the repeat rule to it, not the window.
//
// Memory is thus bounded by configuration: the window by MaxTransactions
// (the gate's own table, which gives its memory back once mostly empty),
// sipgo's transaction tables and the proxy's per-call tables by what the
// window admitted, ringing calls by MaxInflight, TCP connections by
// MaxConns (each holds sipgo's 32 KiB read buffer, a 4 KiB one here and
// a goroutine), a message by MaxMessage. Config.ForMemory derives
// MaxHeap and MaxTransactions from one memory limit (dsn-node's
// -memory-limit): half of it for the live heap, UnitBytes a unit of the
// window.
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
// of their own, but for PacketConns' one reader per socket, which does
// that work and ends when the socket fails. A Gate and the wrappers are safe for concurrent use;
// Metrics is called from read goroutines and must not block.
// Sampler and Recovery belong to one driver goroutine (the node's
// overload ticker), which samples the scheduling delay and the live
// heap, calls Gate.Prune so that the window expires while no request
// comes, and, once an overload is over, returns its memory to the OS.
package overload
