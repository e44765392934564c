package dht

import "context"

// Transport carries the Chord RPCs from this node to a peer. It is the
// caller side; Handler is the receiving side. Every method honours ctx's
// deadline and cancellation and returns an error wrapping ErrUnreachable
// when the peer cannot be reached (the caller treats the peer as suspect).
// Errors the remote handler returned (ErrNotOwner, ErrConflict) come back
// wrapped so errors.Is works across the wire.
//
// Implementations: MemNetwork (in-memory, breakable, for tests) and
// dht/tcp (TCP with cluster-key authentication, for production).
type Transport interface {
	Ping(ctx context.Context, to Peer) error
	GetNeighbors(ctx context.Context, to Peer) (Neighbors, error)
	Notify(ctx context.Context, to Peer, self Peer) error
	FindNext(ctx context.Context, to Peer, id ID, exclude []ID) (Step, error)
	Leave(ctx context.Context, to Peer, notice LeaveNotice) error
	Put(ctx context.Context, to Peer, req PutRequest) (PutResult, error)
	Get(ctx context.Context, to Peer, key string) (Record, bool, error)
	Store(ctx context.Context, to Peer, recs []Record) error
	Sync(ctx context.Context, to Peer, d Digest) (DigestReply, error)
}

// Handler answers the Chord RPCs on the receiving node. *Node implements
// it. Handlers never call back into the Transport while holding locks, so
// A -> B -> A call chains cannot deadlock.
type Handler interface {
	HandlePing(ctx context.Context) (Peer, error)
	HandleGetNeighbors(ctx context.Context) (Neighbors, error)
	HandleNotify(ctx context.Context, candidate Peer) error
	HandleFindNext(ctx context.Context, id ID, exclude []ID) (Step, error)
	HandleLeave(ctx context.Context, notice LeaveNotice) error
	HandlePut(ctx context.Context, req PutRequest) (PutResult, error)
	HandleGet(ctx context.Context, key string) (Record, bool, error)
	HandleStore(ctx context.Context, recs []Record) error
	HandleSync(ctx context.Context, d Digest) (DigestReply, error)
}
