// Package dht is the Chord distributed hash table every dsn service node
// embeds: ring membership, lookup of a key's home node, and a replicated,
// versioned record store (the SIP layer keeps registrations in it).
//
// # Identifiers and ownership
//
// The ring has 2^64 points (Bits). A node's ID is derived from its stable
// name (NodeID), so a node that restarts under the same name returns to the
// same place; a key's ID is the first 64 bits of its SHA-256 (HashKey). The
// owner ("home node") of a key is successor(ID): the first node at or after
// the key's point. 64 bits keep arithmetic to plain uint64 wrap-around and
// the finger table to 64 entries; for fleets of thousands of nodes the
// chance of two names colliding is ~1e-13 and Join refuses a taken ID.
//
// # Protocol
//
// Node implements Chord (Stoica et al., 2001) with a successor list:
// Create, Join, Stabilize, HandleNotify, FixFinger(s), CheckPredecessor,
// iterative Lookup (reporting hops; unreachable hops are excluded and routed
// around), and graceful Leave (hands records to the successor and splices
// itself out of its neighbours' state). Consider merges in peers learned
// from the gossip layer, which re-joins rings split by a partition.
//
// All protocol logic is synchronous: each round runs once per call. A
// Driver runs the rounds on jittered timers in production; tests call them
// in a fixed order (STYLE.md: etcd/raft's Tick/Step/Ready). No lock is held
// while an RPC is in flight, so A -> B -> A call chains cannot deadlock.
// All exported methods are safe for concurrent use.
//
// # Replicated store
//
// Records are opaque values with a Version, optional expiry, and tombstone
// flag. Put and Delete are routed to the owner, which assigns the version
// (max of the wall clock in ns and the previous version + 1; conditional
// puts compare against the live version for read-modify-write), stores the
// record and copies it to its Replicas-1 successors before answering. Newer
// versions win everywhere; ties break deterministically (see newer).
// Maintain, once per round, expires records, reconciles the owner's range
// with each replica by bucketed digests (anti-entropy in both directions,
// narrowing into buckets too large for one message), and hands records this
// node no longer should hold to their owner, dropping them only after the
// owner acknowledged. Joins therefore move keys to the new owner (reads
// during the move read through to the old holders), and after failures the
// survivors restore exactly Replicas copies, provided fewer than Replicas
// consecutive nodes failed at once.
//
// Partitions: each side re-forms a ring and keeps serving. After healing,
// the rings merge (Consider + Stabilize) and the replicas reconcile; a key
// written on both sides keeps the later write (last-writer-wins by version).
//
// # Failure detection
//
// ProbeNeighbors pings the predecessor and first successors every
// ProbeInterval, all at once, each ping bounded by ProbeTimeout;
// SuspectAfter consecutive failures remove the neighbour from the ring
// state (about one second with DefaultConfig for a crash, whose connections
// are refused at once, and about two for a silent peer behind a cut, whose
// pings each wait out ProbeTimeout, against the 4-7 s memberlist's default
// presets take) and emit EventNeighborFailed, which the node layer uses to
// withdraw a dead representative from DNS. A false suspicion heals on its
// own: the live neighbour notifies again.
//
// # Transports
//
// Transport is the caller side of the RPCs and Handler the receiving side.
// MemNetwork is an in-memory network that can kill nodes, cut links,
// partition the ring and intercept calls, so 200-node rings run
// deterministically in one test. Package dht/tcp is the production
// transport: TCP with per-call deadlines, connection reuse, bounded frames,
// and mutual authentication plus encryption with the shared cluster key.
// Its wire format is a hand-written binary encoding (see dht/tcp's doc):
// no reflection, bounded allocation from untrusted lengths, fuzzable, and
// no code generator or RPC framework to pull in (gRPC would add HTTP/2 and
// protobuf for nine small messages; gob and msgpack decode by reflection).
package dht
