// Package tcp is the production network transport of the Chord DHT: it
// implements dht.Transport (the calling side) over TCP, answers peers'
// calls through a dht.Handler (Serve), and shares its one port with
// hashicorp/memberlist (Memberlist), so a node needs a single cluster
// address for gossip and DHT RPC.
//
// # Port sharing
//
// New binds TCP and UDP on the same port. UDP packets all belong to
// memberlist. Every TCP connection starts with one byte written by the
// dialer: 'D' for a DHT RPC connection, 'M' for a memberlist stream (handed
// to memberlist's StreamCh with the byte consumed). Any other first byte
// closes the connection and is counted in Stats.BadPrefix. memberlist
// encrypts its own traffic with its keyring; this package only moves its
// bytes.
//
// # Authentication and encryption
//
// A DHT connection is usable only by peers that share a cluster key. Each
// Transport holds a keyring of 1 to MaxKeys keys of 16, 24 or 32 bytes (New,
// SetKeys), the first its primary. The dialer and the listener exchange
// 32-byte random nonces and each proves a key with an HKDF-SHA256 value over
// both nonces and its role. The listener proves its primary; when that is
// not the dialer's primary, the dialer asks for the proofs of the listener's
// other keys (one more round trip) and proves the first key of its own ring
// that the listener holds, so its primary whenever the listener has it. The
// listener accepts a proof made with any key of its ring. The dialer checks
// the listener's proof before sending its own. Any two nodes that share at
// least one key connect; with one key each, or equal primaries, the exchange
// is exactly the single-key handshake of earlier builds, which still
// interoperate. Mutual proofs over fresh nonces stop replay, distinct role
// labels stop reflection. From the same HKDF, with the key both proved, come
// one AES-256-GCM key per direction. Every later frame is sealed with its
// direction's key and a nonce that is the frame's sequence number, never
// sent: a forged, replayed, dropped or reordered frame fails authentication
// and closes the connection. A caller or a listener that shares no key with
// its peer gets an error wrapping dht.ErrUnauthenticated (and
// dht.ErrUnreachable); Stats counts rejected handshakes on both sides. Which
// key a peer used is logged as its index in this node's ring and its KeyID
// (a public fingerprint; keys are never logged): at debug level, or at info
// level when it was not this node's primary, which
// Stats.SecondaryKeyHandshakes also counts. See auth.go, keyring.go and
// frame.go.
//
// # Key rotation
//
// memberlist encrypts gossip with its primary key only (and decrypts with
// any), so every node's primary must be in every other node's ring.
// Rotating the cluster from key K1 to K2 without downtime takes three
// steps, each finished on every node before the next one starts. A step
// is a restart with the new key file, one node at a time, or a call to
// cluster.Cluster.SetKeys (this package's SetKeys plus the gossip
// keyring) on each node:
//
//  1. Add K2 as a secondary key everywhere: rings [K1 K2]. Nothing changes
//     on the wire; every node can now decrypt and verify K2.
//  2. Make K2 the primary everywhere: rings [K2 K1]. Switched nodes gossip
//     and dial with K2, which every node holds; the others still use K1,
//     which every node holds too.
//  3. Remove K1 everywhere: rings [K2]. No node uses K1 any more.
//
// At every point each node holds every other node's primary, so gossip
// and DHT RPC never stop. Skipping step 1 (a primary that peers lack)
// cuts the node off from gossip. Check each step in the logs: "listening"
// and "cluster keys changed" list the KeyID of every key, primary first,
// and every node's Stats.SecondaryKeyHandshakes must have stopped growing
// before step 3. With SetKeys, existing connections follow the change as
// SetKeys describes: none fails while the procedure is followed.
//
// # Wire format
//
// Inside each frame is one message, encoded by hand (wire.go,
// messages.go): kind, uvarint request ID, op byte, then for a request the
// caller's remaining deadline in milliseconds and the arguments, for a
// response a result code and either the results or the error text. Ring
// IDs are 8 bytes big-endian (they are uniformly random, so varints would
// only grow them), other integers uvarints or zigzag varints, strings and
// byte slices length-prefixed, lists count-prefixed. The decoder checks
// every length and count against the bytes actually left before it
// allocates, so a message can never make it allocate more than a small
// multiple of its own size, and frames are bounded by
// Config.MaxMessageSize, checked from the 4-byte length prefix before the
// frame is read. Only canonical encodings are accepted, so a decoded
// message re-encodes to the same bytes; FuzzDecode checks exactly that.
// We chose this over gob (reflection, self-describing streams with
// per-connection type state, allocation driven by the input), protobuf or
// gRPC (a code generator and a large dependency tree, and gRPC brings its
// own HTTP/2 transport, TLS and connection management that would duplicate
// the key-based authentication here) and msgpack (reflection, and
// untrusted lengths allocate before they are checked): nine small message
// types do not need a schema language, and a few hundred lines of plain Go
// are easy to fuzz and to bound, and add no dependency.
//
// # Connections and errors
//
// Outgoing connections are pooled per peer address (Config.ConnsPerPeer)
// and multiplexed: every request carries an ID and the caller waits only
// for its own response, so concurrent calls to one peer never queue behind
// a slow one. Connections idle for Config.IdleTimeout are closed, and
// connections whose sent data the peer has not acknowledged for
// Config.UserTimeout (TCP_USER_TIMEOUT: the peer is cut off) are aborted by
// the kernel, so calls after a partition heals dial afresh instead of
// waiting out a backed-off retransmission timer. The
// server answers each request on its own goroutine, at most
// Config.MaxInflight per connection, with a context that carries the
// caller's remaining deadline and is canceled by Close.
//
// Every call honours its context. A peer that cannot be reached, a lost
// connection, or a call whose context ends returns an error wrapping
// dht.ErrUnreachable (and the context's error). Handler errors that are
// dht.ErrNotOwner, dht.ErrConflict, dht.ErrNotFound or dht.ErrStopped come
// back as a *RemoteError that unwraps to that sentinel; other handler
// errors come back as a *RemoteError carrying their message. A call lost
// with a reused connection is retried once on a new one, except Put, which
// is not idempotent. Ping also fails with dht.ErrUnreachable when a node
// with a different ID answers at the peer's address.
//
// # Concurrency
//
// All methods of Transport, SetKeys included, are safe for concurrent
// use. New returns once
// the sockets are bound and accepting; Serve does not block; the
// dht.Transport methods block until the response, the context's end or the
// connection's loss. Close blocks until every goroutine the transport
// started has returned, which includes running handlers: handlers must
// honour their context. Shut memberlist down before closing the
// Transport under it.
package tcp
