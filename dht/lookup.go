package dht

import (
	"context"
	"errors"
	"fmt"
)

// LookupResult is where a key lives: its owner (the successor of the key's
// ID), the owner's successors as known at the last hop (the replica holders
// are the first Replicas-1 of them), and how many remote hops the
// iterative lookup took.
type LookupResult struct {
	Owner      Peer   `json:"owner"`
	Successors []Peer `json:"successors"`
	Hops       int    `json:"hops"`
}

// HandleFindNext answers one step of an iterative lookup for id, skipping
// the peers in exclude (the caller found them unreachable).
func (n *Node) HandleFindNext(_ context.Context, id ID, exclude []ID) (Step, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return Step{}, ErrStopped
	}
	return n.stepLocked(id, excludeSet(exclude)), nil
}

func excludeSet(ids []ID) map[ID]bool {
	if len(ids) == 0 {
		return nil
	}
	m := make(map[ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// stepLocked is the routing decision of one node: if id falls between this
// node and its first usable successor, the lookup is done; otherwise it
// names the closest node preceding id among fingers and successors.
func (n *Node) stepLocked(id ID, exclude map[ID]bool) Step {
	live := make([]Peer, 0, len(n.succs))
	for _, s := range n.succs {
		if !exclude[s.ID] {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		// Alone (or every successor is excluded): we are the answer.
		return Step{Done: true, Next: n.self}
	}
	if betweenRightIncl(id, n.self.ID, live[0].ID) {
		return Step{Done: true, Next: live[0], Successors: append([]Peer(nil), live[1:]...)}
	}
	best := Peer{}
	consider := func(p Peer) {
		if p.IsZero() || p.ID == n.self.ID || exclude[p.ID] || !between(p.ID, n.self.ID, id) {
			return
		}
		if best.IsZero() || between(p.ID, best.ID, id) {
			best = p
		}
	}
	for i := Bits - 1; i >= 0; i-- {
		consider(n.fingers[i])
	}
	for _, s := range live {
		consider(s)
	}
	if best.IsZero() {
		best = live[0]
	}
	// If a successor-list entry is the owner, answer directly.
	for i := 0; i+1 < len(live); i++ {
		if betweenRightIncl(id, live[i].ID, live[i+1].ID) {
			return Step{Done: true, Next: live[i+1], Successors: append([]Peer(nil), live[i+2:]...)}
		}
	}
	return Step{Next: best}
}

// Lookup finds the owner of id with an iterative lookup that starts at this
// node. Unreachable nodes met on the way are excluded and routed around,
// and reported to the local ring state as suspects.
func (n *Node) Lookup(ctx context.Context, id ID) (LookupResult, error) {
	return n.lookupExcluding(ctx, id, nil)
}

// lookupExcluding is Lookup that also routes around the given peers (known
// to be unreachable): an excluded owner is replaced by the next successor,
// which is the node that takes its range over.
func (n *Node) lookupExcluding(ctx context.Context, id ID, exclude []ID) (LookupResult, error) {
	if n.isStopped() {
		return LookupResult{}, ErrStopped
	}
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	return n.lookupFrom(ctx, Peer{}, id, exclude)
}

// lookupVia runs a lookup whose first step is asked of seed (used to join).
func (n *Node) lookupVia(ctx context.Context, seed Peer, id ID) (LookupResult, error) {
	return n.lookupFrom(ctx, seed, id, nil)
}

// lookupFrom runs the iterative lookup. A zero start means "begin with the
// local routing table".
func (n *Node) lookupFrom(ctx context.Context, start Peer, id ID, exclude []ID) (LookupResult, error) {
	exclude = append([]ID(nil), exclude...)
	var lastErr error
	for attempt := 0; attempt < n.cfg.LookupRetries; attempt++ {
		res, dead, err := n.walk(ctx, start, id, exclude)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return LookupResult{}, fmt.Errorf("dht: lookup %s: %w", id, ctx.Err())
		}
		if dead.IsZero() {
			break
		}
		exclude = append(exclude, dead.ID)
		if start.ID == dead.ID {
			return LookupResult{}, fmt.Errorf("dht: lookup %s: seed unreachable: %w", id, err)
		}
	}
	return LookupResult{}, fmt.Errorf("%w: %s: %w", ErrLookupFailed, id, lastErr)
}

// walk performs one iterative lookup. On an unreachable hop it returns that
// peer so the caller can exclude it and try again.
func (n *Node) walk(ctx context.Context, start Peer, id ID, exclude []ID) (LookupResult, Peer, error) {
	var step Step
	hops := 0
	if start.IsZero() {
		n.mu.Lock()
		if !n.pred.IsZero() && betweenRightIncl(id, n.pred.ID, n.self.ID) && !contains(exclude, n.self.ID) {
			succs := append([]Peer(nil), n.succs...)
			n.mu.Unlock()
			return LookupResult{Owner: n.self, Successors: succs}, Peer{}, nil
		}
		step = n.stepLocked(id, excludeSet(exclude))
		n.mu.Unlock()
	} else {
		step = Step{Next: start}
	}
	for !step.Done || contains(exclude, step.Next.ID) {
		if step.Done {
			// The answer is a peer we know is down: its range now belongs
			// to the next successor.
			if len(step.Successors) == 0 {
				return LookupResult{}, Peer{}, fmt.Errorf("dht: lookup %s: owner %s unreachable and no successor known", id, step.Next.Name)
			}
			step = Step{Done: true, Next: step.Successors[0], Successors: step.Successors[1:]}
			continue
		}
		if hops >= n.cfg.MaxLookupHops {
			return LookupResult{}, Peer{}, fmt.Errorf("dht: lookup %s: exceeded %d hops", id, n.cfg.MaxLookupHops)
		}
		next := step.Next
		if next.ID == n.self.ID && next.Addr == n.self.Addr {
			n.mu.Lock()
			step = n.stepLocked(id, excludeSet(exclude))
			n.mu.Unlock()
			if !step.Done && step.Next.ID == n.self.ID {
				return LookupResult{}, Peer{}, fmt.Errorf("dht: lookup %s: routing loop at self", id)
			}
			continue
		}
		s, err := n.tr.FindNext(ctx, next, id, exclude)
		hops++
		if err != nil {
			if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrStopped) {
				n.Suspect(next)
				return LookupResult{}, next, err
			}
			return LookupResult{}, Peer{}, err
		}
		if !s.Done && s.Next.ID == next.ID {
			return LookupResult{}, Peer{}, fmt.Errorf("dht: lookup %s: %s pointed at itself", id, next)
		}
		step = s
	}
	return LookupResult{Owner: step.Next, Successors: step.Successors, Hops: hops}, Peer{}, nil
}

func contains(ids []ID, id ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
