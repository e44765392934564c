package dht

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"go.uber.org/zap"
)

// EventKind says what changed in a node's view of the ring.
type EventKind int

const (
	// EventPredecessorChanged: the predecessor changed (Peer is the new one,
	// Old the previous; either may be zero).
	EventPredecessorChanged EventKind = iota + 1
	// EventSuccessorChanged: the immediate successor changed.
	EventSuccessorChanged
	// EventNeighborFailed: a neighbour stopped answering and was removed from
	// the ring state (Peer). Role says which neighbour it was to this node.
	EventNeighborFailed
	// EventNeighborLeft: a neighbour announced a graceful leave.
	EventNeighborLeft
)

func (k EventKind) String() string {
	switch k {
	case EventPredecessorChanged:
		return "predecessor-changed"
	case EventSuccessorChanged:
		return "successor-changed"
	case EventNeighborFailed:
		return "neighbor-failed"
	case EventNeighborLeft:
		return "neighbor-left"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event reports a change in the ring state. Events are delivered
// synchronously, outside the node's locks, on the goroutine that caused
// them; observers must not block.
type Event struct {
	Kind EventKind
	Peer Peer
	Old  Peer
	// Successors is this node's successor list right after the change.
	Successors []Peer
	// WasPredecessor / SuccessorIndex tell how the failed or departed peer
	// related to this node (SuccessorIndex -1 when it was not a successor).
	WasPredecessor bool
	SuccessorIndex int
}

// Deps are a node's dependencies.
type Deps struct {
	Transport Transport
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Rand is the source of randomness (jitter, bootstrap choice); defaults
	// to a time-seeded source. Tests pass a seeded one.
	Rand *rand.Rand
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Observer receives ring events; may be nil.
	Observer func(Event)
	// Store holds the records; defaults to NewStore().
	Store *Store
}

// Node is one member of the Chord ring. Its methods are synchronous: the
// maintenance rounds (Stabilize, FixFingers, CheckPredecessor, Maintain,
// ProbeNeighbors) each run once per call and are driven from outside, by a
// Driver in production and by tests directly. All methods are safe for
// concurrent use; no lock is held while an RPC is in flight.
type Node struct {
	cfg   Config
	self  Peer
	tr    Transport
	now   func() time.Time
	log   *zap.Logger
	obs   func(Event)
	store *Store

	mu         sync.Mutex
	rng        *rand.Rand
	pred       Peer
	succs      []Peer
	fingers    [Bits]Peer
	nextFinger int
	stopped    bool
	probeFails map[ID]int
}

var _ Handler = (*Node)(nil)

// New creates a node that is not yet part of any ring; call Create or Join.
func New(cfg Config, self Peer, deps Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self.Addr == "" {
		return nil, fmt.Errorf("dht: self peer needs an address")
	}
	if self.Name == "" {
		return nil, fmt.Errorf("dht: self peer needs a name")
	}
	if deps.Transport == nil {
		return nil, fmt.Errorf("dht: a Transport is required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Store == nil {
		deps.Store = NewStore()
	}
	return &Node{
		cfg: cfg, self: self, tr: deps.Transport, now: deps.Now, rng: deps.Rand,
		log: deps.Logger, obs: deps.Observer, store: deps.Store,
		probeFails: make(map[ID]int),
	}, nil
}

// Self returns this node's identity.
func (n *Node) Self() Peer { return n.self }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// LocalStore exposes the node's record table (read-mostly; for status and
// tests).
func (n *Node) LocalStore() *Store { return n.store }

// State is a snapshot of a node's ring view.
type State struct {
	Self        Peer   `json:"self"`
	Predecessor Peer   `json:"predecessor"`
	Successors  []Peer `json:"successors"`
	// Fingers are the distinct finger entries with the index of the first
	// finger that points at each.
	Fingers []Finger `json:"fingers"`
}

// Finger is one distinct finger-table entry.
type Finger struct {
	Index int  `json:"index"`
	Start ID   `json:"start"`
	Node  Peer `json:"node"`
}

// State returns a copy of the node's ring view.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := State{Self: n.self, Predecessor: n.pred, Successors: append([]Peer(nil), n.succs...)}
	var last ID
	for i, f := range n.fingers {
		if f.IsZero() || (i > 0 && f.ID == last && !n.fingers[i-1].IsZero()) {
			continue
		}
		last = f.ID
		st.Fingers = append(st.Fingers, Finger{Index: i, Start: fingerStart(n.self.ID, i), Node: f})
	}
	return st
}

// FingerAt returns finger i (zero if unset); for tests and diagnostics.
func (n *Node) FingerAt(i int) Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fingers[i]
}

// Predecessor returns the current predecessor (zero if unknown).
func (n *Node) Predecessor() Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pred
}

// Successors returns a copy of the successor list.
func (n *Node) Successors() []Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Peer(nil), n.succs...)
}

// successor returns the immediate successor, or self when alone.
func (n *Node) successorLocked() Peer {
	if len(n.succs) == 0 {
		return n.self
	}
	return n.succs[0]
}

// Create starts a new ring containing only this node.
func (n *Node) Create() {
	n.mu.Lock()
	n.pred = Peer{}
	n.succs = nil
	n.stopped = false
	n.mu.Unlock()
}

// Join enters the ring that seed belongs to: it finds this node's successor
// through seed and adopts its successor list. Stabilize completes the join.
func (n *Node) Join(ctx context.Context, seed Peer) error {
	res, err := n.lookupVia(ctx, seed, n.self.ID)
	if err != nil {
		return fmt.Errorf("dht: join via %s: %w", seed.Addr, err)
	}
	if res.Owner.ID == n.self.ID && res.Owner.Addr != n.self.Addr {
		// Our ID is in the ring at another address: either a live node
		// with the same name (refuse) or our own previous incarnation that
		// crashed and is not yet detected (take its place).
		if err := n.tr.Ping(ctx, res.Owner); err == nil {
			return fmt.Errorf("dht: join via %s: node ID %s is taken by a live node at %s (node names must be unique)", seed.Addr, n.self.ID, res.Owner.Addr)
		}
	}
	succs := []Peer{res.Owner}
	if res.Owner.ID == n.self.ID {
		// We are already in the ring under this name (a fast restart):
		// our old successor list is in the answer.
		succs = nil
	}
	succs = append(succs, res.Successors...)
	n.mu.Lock()
	n.stopped = false
	n.pred = Peer{}
	old := n.successorLocked()
	n.succs = n.cleanListLocked(succs)
	cur := n.successorLocked()
	n.mu.Unlock()
	if cur.ID != old.ID {
		n.emit(Event{Kind: EventSuccessorChanged, Peer: cur, Old: old, Successors: n.Successors()})
	}
	if !cur.IsZero() && cur.ID != n.self.ID {
		_ = n.tr.Notify(ctx, cur, n.self)
	}
	return nil
}

// cleanListLocked removes zero peers and duplicates, stops where the list
// comes round to this node again, and truncates to the configured length.
// Stopping at self matters in rings smaller than the list: a successor's
// list wraps past us, and what follows us in it are nodes between us and
// that successor which it only knows second-hand — typically a dead node
// we just removed, which would otherwise circulate forever.
func (n *Node) cleanListLocked(in []Peer) []Peer {
	out := make([]Peer, 0, n.cfg.SuccessorListLen)
	seen := make(map[ID]bool, len(in))
	for _, p := range in {
		if p.ID == n.self.ID && !p.IsZero() {
			break
		}
		if p.IsZero() || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		out = append(out, p)
		if len(out) == n.cfg.SuccessorListLen {
			break
		}
	}
	return out
}

func (n *Node) emit(e Event) {
	if n.obs != nil {
		n.obs(e)
	}
}

func (n *Node) isStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

// owns reports whether id falls in this node's range (pred, self]. With no
// known predecessor the node assumes it owns id (it is alone, or its
// predecessor just failed and it is the next in line).
func (n *Node) ownsLocked(id ID) bool {
	if n.pred.IsZero() {
		return true
	}
	return betweenRightIncl(id, n.pred.ID, n.self.ID)
}

// Owns reports whether id falls in this node's current range.
func (n *Node) Owns(id ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ownsLocked(id)
}

// HandlePing answers a liveness probe with this node's identity.
func (n *Node) HandlePing(context.Context) (Peer, error) {
	if n.isStopped() {
		return Peer{}, ErrStopped
	}
	return n.self, nil
}

// HandleGetNeighbors returns the predecessor and successor list.
func (n *Node) HandleGetNeighbors(context.Context) (Neighbors, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return Neighbors{}, ErrStopped
	}
	return Neighbors{Predecessor: n.pred, Successors: append([]Peer(nil), n.succs...)}, nil
}

// HandleNotify is Chord's notify: candidate thinks it might be our
// predecessor.
func (n *Node) HandleNotify(_ context.Context, cand Peer) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	if cand.IsZero() || cand.ID == n.self.ID {
		n.mu.Unlock()
		return nil
	}
	old := n.pred
	changed := false
	if old.IsZero() || between(cand.ID, old.ID, n.self.ID) {
		n.pred = cand
		changed = old.ID != cand.ID || old.IsZero()
	} else if old.ID == cand.ID && old.Addr != cand.Addr {
		n.pred = cand // same node, new address after a restart
	}
	// A lone node learns its first successor from its first notifier.
	var succEv *Event
	if len(n.succs) == 0 {
		n.succs = []Peer{cand}
		succEv = &Event{Kind: EventSuccessorChanged, Peer: cand, Old: n.self, Successors: []Peer{cand}}
	}
	delete(n.probeFails, cand.ID)
	n.mu.Unlock()
	if changed {
		n.emit(Event{Kind: EventPredecessorChanged, Peer: cand, Old: old})
	}
	if succEv != nil {
		n.emit(*succEv)
	}
	return nil
}
