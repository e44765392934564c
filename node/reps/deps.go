package reps

import (
	"context"
	"net/netip"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/dnsreport"
)

// Ring is this node's view of the Chord ring. *dht.Node implements it.
type Ring interface {
	Self() dht.Peer
	Lookup(ctx context.Context, id dht.ID) (dht.LookupResult, error)
	State() dht.State
}

// Prober reaches other ring members. dht.Transport implements it.
type Prober interface {
	Ping(ctx context.Context, to dht.Peer) error
	GetNeighbors(ctx context.Context, to dht.Peer) (dht.Neighbors, error)
}

// Publisher applies DNS changes with retries. *dnsreport.Reporter
// implements it. Submit and Cancel must not block and must not call back
// into the Manager (the Manager calls them under its lock, which keeps the
// order of a node's own publish and withdraw).
type Publisher interface {
	Submit(in dnsreport.Intent) error
	Cancel(key string)
	Flush(ctx context.Context, key string) error
	Status(key string) (dnsreport.Status, bool)
}

// Reader reads what DNS publishes for the representatives. *DNSReader
// implements it.
type Reader interface {
	ReadPublished(ctx context.Context) (dnsreport.Published, error)
}

var (
	_ Ring      = (*dht.Node)(nil)
	_ Prober    = dht.Transport(nil)
	_ Publisher = (*dnsreport.Reporter)(nil)
	_ Reader    = (*DNSReader)(nil)
)

// Deps are the Manager's dependencies. Ring, Prober and Publisher are
// required.
type Deps struct {
	Ring      Ring
	Prober    Prober
	Publisher Publisher
	// Reader enables reconciliation; nil disables it.
	Reader Reader
	// Members returns the live members the gossip layer knows
	// (cluster.Cluster.Members); nil means none beyond the ring state.
	Members func() []dht.Peer
	// SIPAddr extracts a peer's SIP advertise address; nil means
	// ParseSIPAddr(peer.Meta).
	SIPAddr func(dht.Peer) (netip.AddrPort, error)
	// Clock defaults to dnsreport.SystemClock.
	Clock dnsreport.Clock
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Hooks receive metrics events; any may be nil.
	Hooks Hooks
}

// Hooks are metrics callbacks. They run outside the Manager's lock, on the
// goroutine that caused the event, and must not block.
type Hooks struct {
	// RepStatus reports this node's representative status after every
	// election that changed it (and after the first).
	RepStatus func(isRep bool)
	// RepSetSize reports the size of the representative set after every
	// election that changed it (and after the first).
	RepSetSize func(n int)
	// DeletionSent counts deletions submitted, by role: "predecessor",
	// "successor", "backup" (a watched representative failed),
	// "reconcile" (a stale entry), "leave" (graceful leave), "self" (this
	// node stopped being chosen).
	DeletionSent func(role string)
	// NeighborFailed counts representatives this node declared failed, by
	// its watcher role ("predecessor", "successor", "backup").
	NeighborFailed func(role string)
	// Republished counts re-publications of this node's own records after
	// reconciliation found them missing.
	Republished func()
}
