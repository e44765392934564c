package dht

import (
	"context"
	"errors"
	"sync"
)

// Stabilize is one round of Chord's stabilize: it finds the first live
// successor, asks it for its predecessor (adopting that node if it sits
// between), refreshes the successor list from the successor's, and notifies
// the successor of this node. Dead successors met on the way are removed.
func (n *Node) Stabilize(ctx context.Context) error {
	if n.isStopped() {
		return ErrStopped
	}
	for tries := 0; tries <= n.cfg.SuccessorListLen; tries++ {
		n.mu.Lock()
		succ := n.successorLocked()
		n.mu.Unlock()
		var nb Neighbors
		var err error
		if succ.ID == n.self.ID {
			nb, err = n.HandleGetNeighbors(ctx)
		} else {
			nb, err = n.tr.GetNeighbors(ctx, succ)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.removeFailed(succ)
			continue
		}
		if x := nb.Predecessor; !x.IsZero() && x.ID != n.self.ID && between(x.ID, n.self.ID, succ.ID) {
			if xnb, err := n.tr.GetNeighbors(ctx, x); err == nil {
				succ, nb = x, xnb
			}
		}
		list := nb.Successors
		if succ.ID != n.self.ID {
			list = append([]Peer{succ}, nb.Successors...)
		}
		n.setSuccessors(list)
		n.mu.Lock()
		cur := n.successorLocked()
		n.mu.Unlock()
		if cur.ID != n.self.ID {
			if err := n.tr.Notify(ctx, cur, n.self); err != nil && errors.Is(err, ErrUnreachable) {
				n.removeFailed(cur)
				continue
			}
		}
		return nil
	}
	return nil
}

// setSuccessors installs a new successor list and reports a change of the
// immediate successor.
func (n *Node) setSuccessors(list []Peer) {
	n.mu.Lock()
	old := n.successorLocked()
	n.succs = n.cleanListLocked(list)
	cur := n.successorLocked()
	var ev *Event
	if cur.ID != old.ID {
		ev = &Event{Kind: EventSuccessorChanged, Peer: cur, Old: old, Successors: append([]Peer(nil), n.succs...)}
	}
	n.mu.Unlock()
	if ev != nil {
		n.emit(*ev)
	}
}

// CheckPredecessor pings the predecessor and forgets it if the ping fails
// before ctx ends (a refused connection: a crash), so that a live node can
// take its place through notify. A ping that runs out of ctx proves
// nothing and removes nobody; a silent predecessor is removed by
// ProbeNeighbors after SuspectAfter misses. The Driver gives it a context
// of its own, bounded by ProbeTimeout, so a silent predecessor costs a
// stabilize round one probe timeout, not the round's RPCTimeout.
func (n *Node) CheckPredecessor(ctx context.Context) error {
	pred := n.Predecessor()
	if pred.IsZero() {
		return nil
	}
	if err := n.tr.Ping(ctx, pred); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.removeFailed(pred)
	}
	return nil
}

// Suspect removes p from this node's ring state (predecessor, successor
// list, fingers) because it is believed dead. If the suspicion is false, p
// comes back through notify and stabilize on its next round.
func (n *Node) Suspect(p Peer) { n.removeFailed(p) }

func (n *Node) removeFailed(p Peer) {
	n.removePeer(p, EventNeighborFailed)
}

// removePeer splices p out of the ring state and reports what it was to us.
// It matches the exact incarnation: a node restarted under the same name
// (same ID) at a new address is not removed because its previous address
// stopped answering.
func (n *Node) removePeer(p Peer, kind EventKind) {
	if p.ID == n.self.ID {
		return
	}
	n.mu.Lock()
	ev := Event{Kind: kind, Peer: p, SuccessorIndex: -1}
	was := false
	oldSucc := n.successorLocked()
	if samePeer(n.pred, p) {
		n.pred = Peer{}
		ev.WasPredecessor = true
		was = true
	}
	for i, s := range n.succs {
		if samePeer(s, p) {
			n.succs = append(n.succs[:i:i], n.succs[i+1:]...)
			ev.SuccessorIndex = i
			was = true
			break
		}
	}
	var repl Peer
	for i := Bits - 1; i >= 0; i-- {
		if samePeer(n.fingers[i], p) {
			n.fingers[i] = repl
		} else {
			repl = n.fingers[i]
		}
	}
	if len(n.succs) == 0 {
		// Lost every successor: fall back to the closest finger so the ring
		// can heal through stabilize instead of partitioning.
		for i := 0; i < Bits; i++ {
			if f := n.fingers[i]; !f.IsZero() && f.ID != n.self.ID {
				n.succs = []Peer{f}
				break
			}
		}
	}
	delete(n.probeFails, p.ID)
	newSucc := n.successorLocked()
	ev.Successors = append([]Peer(nil), n.succs...)
	n.mu.Unlock()
	if was {
		n.log.Debug("dht: neighbour removed")
		n.emit(ev)
	}
	if newSucc.ID != oldSucc.ID {
		n.emit(Event{Kind: EventSuccessorChanged, Peer: newSucc, Old: oldSucc, Successors: ev.Successors})
	}
}

// samePeer reports whether a is the incarnation p names: same ID and, when
// p has one, the same address.
func samePeer(a, p Peer) bool {
	return !a.IsZero() && a.ID == p.ID && (p.Addr == "" || a.Addr == p.Addr)
}

// Consider offers peers learned elsewhere (the gossip membership list) as
// candidates: a live peer that sits between this node and its successor
// becomes the new successor. This is how two rings that formed on both
// sides of a healed partition merge into one, which Chord's stabilize alone
// cannot do.
func (n *Node) Consider(ctx context.Context, peers []Peer) {
	for _, p := range peers {
		if p.IsZero() || p.ID == n.self.ID {
			continue
		}
		n.mu.Lock()
		succ := n.successorLocked()
		better := succ.ID == n.self.ID || between(p.ID, n.self.ID, succ.ID)
		n.mu.Unlock()
		if !better {
			continue
		}
		if err := n.tr.Ping(ctx, p); err != nil {
			continue
		}
		// Decide again: while we pinged, a join or stabilize may have
		// found a closer successor, and p would push it down the list
		// (a node restarting gets every member offered while its join
		// is in flight).
		n.mu.Lock()
		old := n.successorLocked()
		if old.ID != n.self.ID && !between(p.ID, n.self.ID, old.ID) {
			n.mu.Unlock()
			continue
		}
		n.succs = n.cleanListLocked(append([]Peer{p}, n.succs...))
		cur := n.successorLocked()
		succs := append([]Peer(nil), n.succs...)
		n.mu.Unlock()
		if cur.ID != old.ID {
			n.emit(Event{Kind: EventSuccessorChanged, Peer: cur, Old: old, Successors: succs})
		}
	}
}

// ProbeNeighbors pings the predecessor and the first two successors once,
// all at the same time: one goroutine per distinct neighbour, each ping
// bounded by its own context from timeoutPerProbe (ctx itself when nil),
// all joined before it returns, so a round lasts one probe timeout however
// many neighbours are silent (a silent peer drops packets: its pings hang
// until their deadline). A neighbour that fails SuspectAfter consecutive
// probes is removed from the ring state (EventNeighborFailed). Driven every
// ProbeInterval, this notices a crashed or cut-off neighbour in about
// SuspectAfter*(ProbeInterval+ProbeTimeout). If ctx ends during the round,
// no result is counted.
func (n *Node) ProbeNeighbors(ctx context.Context, timeoutPerProbe func() (context.Context, context.CancelFunc)) {
	n.mu.Lock()
	targets := make([]Peer, 0, 3)
	add := func(p Peer) {
		for _, t := range targets {
			if samePeer(t, p) {
				return // pred == successor in a two-node ring: one probe
			}
		}
		targets = append(targets, p)
	}
	if !n.pred.IsZero() {
		add(n.pred)
	}
	for i, s := range n.succs {
		if i >= 2 {
			break
		}
		add(s)
	}
	n.mu.Unlock()
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if timeoutPerProbe != nil {
				pctx, cancel = timeoutPerProbe()
			}
			defer cancel()
			errs[i] = n.tr.Ping(pctx, p)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// Results are applied in target order, so the events of a round come
	// out in the same order however the pings interleaved.
	for i, p := range targets {
		n.mu.Lock()
		if errs[i] == nil {
			delete(n.probeFails, p.ID)
			n.mu.Unlock()
			continue
		}
		n.probeFails[p.ID]++
		fails := n.probeFails[p.ID]
		n.mu.Unlock()
		if fails >= n.cfg.SuspectAfter {
			n.removeFailed(p)
		}
	}
}
