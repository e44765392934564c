package dht

import (
	"context"
	"errors"
)

// MaintainStats reports what one maintenance round did.
type MaintainStats struct {
	Expired    int // records dropped because they expired
	Pushed     int // records copied to replicas or handed to their owner
	Pulled     int // newer records learned from replicas
	HandedOff  int // records given to their owner and dropped locally
	SyncErrors int // peers that could not be reached
}

// Maintain runs one round of replica maintenance:
//
//  1. drop expired records (and expired tombstones);
//  2. as owner of (pred, self], reconcile that range with each of the
//     Replicas-1 successors by digest (anti-entropy, both directions);
//  3. for records this node does not own, find their owner; if this node is
//     not among the owner's replica holders any more, hand the records to
//     the owner and drop them once it acknowledged.
//
// A record is dropped locally only after a peer acknowledged holding it, so
// a round can never lose data; repeated rounds converge to exactly Replicas
// copies of every record.
func (n *Node) Maintain(ctx context.Context) (MaintainStats, error) {
	var st MaintainStats
	if n.isStopped() {
		return st, ErrStopped
	}
	st.Expired = n.store.Expire(n.now().UnixNano())

	n.mu.Lock()
	pred := n.pred
	replicas := n.replicaTargetsLocked()
	n.mu.Unlock()
	if pred.IsZero() {
		// Our range is unknown until a predecessor notifies us.
		return st, nil
	}
	for _, r := range replicas {
		if err := n.syncArc(ctx, r, pred.ID, n.self.ID, 0, &st); err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			st.SyncErrors++
		}
	}
	n.handOff(ctx, pred, &st)
	return st, ctx.Err()
}

// syncArc reconciles the arc (lo, hi] with peer: digests first, then the
// records of differing buckets both ways, narrowing into buckets that hold
// too many records for one message.
func (n *Node) syncArc(ctx context.Context, peer Peer, lo, hi ID, depth int, st *MaintainStats) error {
	b := n.cfg.SyncBuckets
	d := Digest{Lo: lo, Hi: hi, Buckets: n.store.Summaries(lo, hi, b)}
	reply, err := n.tr.Sync(ctx, peer, d)
	if err != nil {
		return err
	}
	if len(reply.Differ) == 0 {
		return nil
	}
	for _, r := range reply.Records {
		if n.merge(r) {
			st.Pulled++
		}
	}
	if reply.Partial && depth < 8 {
		for _, bk := range reply.Differ {
			if bk < 0 || bk >= b {
				continue
			}
			slo, shi := bucketArc(lo, hi, b, bk)
			if slo == shi {
				continue
			}
			if err := n.syncArc(ctx, peer, slo, shi, depth+1, st); err != nil {
				return err
			}
		}
		return nil
	}
	mine := n.store.BucketRecords(lo, hi, b, reply.Differ)
	return n.pushBatches(ctx, peer, mine, st)
}

func (n *Node) pushBatches(ctx context.Context, peer Peer, recs []Record, st *MaintainStats) error {
	for len(recs) > 0 {
		k := min(len(recs), n.cfg.MaxBatch)
		if err := n.tr.Store(ctx, peer, recs[:k]); err != nil {
			return err
		}
		st.Pushed += k
		recs = recs[k:]
	}
	return nil
}

// handOff walks the records outside this node's range, owner by owner. For
// each owner it checks whether this node is one of the owner's replica
// holders; if not, it pushes the owner's records to it and drops them.
func (n *Node) handOff(ctx context.Context, pred Peer, st *MaintainStats) {
	self := n.self.ID
	cursor := self // walk (cursor, pred] in ring order
	for guard := 0; guard < 4*n.cfg.SuccessorListLen+64; guard++ {
		if cursor == pred.ID {
			return
		}
		var first ID
		found := false
		n.store.Arc(cursor, pred.ID, func(id ID, _ Record) bool {
			first, found = id, true
			return false
		})
		if !found {
			return
		}
		res, err := n.Lookup(ctx, first)
		if err != nil {
			st.SyncErrors++
			return
		}
		owner := res.Owner
		if owner.ID == self {
			return // our view and the ring disagree; next round
		}
		nb, err := n.tr.GetNeighbors(ctx, owner)
		if err != nil || nb.Predecessor.IsZero() {
			st.SyncErrors++
			return
		}
		lo, hi := nb.Predecessor.ID, owner.ID
		if !betweenRightIncl(first, lo, hi) {
			return // owner's view is still settling; next round
		}
		keep := false
		for i, s := range nb.Successors {
			if i >= n.cfg.Replicas-1 {
				break
			}
			if s.ID == self {
				keep = true
			}
		}
		if !keep {
			// Only the part of the owner's range that lies before us.
			end := hi
			if betweenRightIncl(pred.ID, lo, hi) {
				end = pred.ID
			}
			recs := n.store.Records(first-1, end)
			if err := n.pushBatches(ctx, owner, recs, st); err != nil {
				if errors.Is(err, ErrUnreachable) {
					n.Suspect(owner)
				}
				st.SyncErrors++
				return
			}
			for _, r := range recs {
				if n.store.RemoveIf(r) {
					st.HandedOff++
				}
			}
		}
		if betweenRightIncl(pred.ID, lo, hi) {
			return
		}
		cursor = hi
	}
}
