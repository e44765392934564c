package dht

import (
	"context"
	"fmt"
)

// Leave departs the ring gracefully: it hands every record to the
// successor (which becomes the owner of this node's range and re-creates
// the missing replica on its next maintenance round), tells the successor
// and predecessor to splice this node out, and stops answering RPCs.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	pred := n.pred
	succs := append([]Peer(nil), n.succs...)
	n.mu.Unlock()

	var handed bool
	var lastErr error
	all := n.store.Records(n.self.ID, n.self.ID)
	for _, s := range succs {
		var st MaintainStats
		if err := n.pushBatches(ctx, s, all, &st); err != nil {
			lastErr = err
			continue
		}
		handed = true
		notice := LeaveNotice{Leaving: n.self, Predecessor: pred, Successors: succs}
		_ = n.tr.Leave(ctx, s, notice)
		break
	}
	if !pred.IsZero() && pred.ID != n.self.ID {
		_ = n.tr.Leave(ctx, pred, LeaveNotice{Leaving: n.self, Predecessor: pred, Successors: succs})
	}
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	if len(all) > 0 && !handed && len(succs) > 0 {
		return fmt.Errorf("dht: leave: could not hand %d records to any successor: %w", len(all), lastErr)
	}
	return nil
}

// HandleLeave splices a departing neighbour out of the ring state.
func (n *Node) HandleLeave(_ context.Context, notice LeaveNotice) error {
	if n.isStopped() {
		return ErrStopped
	}
	gone := notice.Leaving
	n.mu.Lock()
	wasPred := n.pred.ID == gone.ID && !n.pred.IsZero()
	idx := -1
	for i, s := range n.succs {
		if s.ID == gone.ID {
			idx = i
			break
		}
	}
	var newPred Peer
	if wasPred && notice.Predecessor.ID != n.self.ID {
		newPred = notice.Predecessor
	}
	var splice []Peer
	if idx >= 0 {
		splice = append(append([]Peer(nil), n.succs[:idx]...), notice.Successors...)
		splice = append(splice, n.succs[idx+1:]...)
	}
	n.mu.Unlock()

	if wasPred || idx >= 0 {
		n.removePeer(gone, EventNeighborLeft)
	}
	if wasPred && !newPred.IsZero() {
		_ = n.HandleNotify(context.Background(), newPred)
	}
	if idx >= 0 {
		n.setSuccessors(splice)
	}
	return nil
}
