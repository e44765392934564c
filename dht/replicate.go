package dht

import (
	"context"
	"errors"
	"fmt"
)

// PutOptions tune a client Put.
type PutOptions struct {
	// Expires is the record's absolute expiry (Unix ns), 0 for none.
	Expires int64
	// IfVersion makes the put conditional (see PutRequest).
	IfVersion   uint64
	Conditional bool
}

// Put stores value under key on the key's owner, which assigns a version
// and copies it to its Replicas-1 successors before answering. It returns
// the owner's result. A conditional put that lost a race returns an error
// wrapping ErrConflict.
func (n *Node) Put(ctx context.Context, key string, value []byte, opt PutOptions) (PutResult, error) {
	req := PutRequest{
		Record:      Record{Key: key, Value: value, Expires: opt.Expires},
		IfVersion:   opt.IfVersion,
		Conditional: opt.Conditional,
	}
	return n.routePut(ctx, req)
}

// Delete writes a tombstone for key on its owner and replicas. A
// conditional delete fails with ErrConflict if the live version differs.
func (n *Node) Delete(ctx context.Context, key string, opt PutOptions) (PutResult, error) {
	req := PutRequest{
		Record:      Record{Key: key, Deleted: true},
		IfVersion:   opt.IfVersion,
		Conditional: opt.Conditional,
	}
	return n.routePut(ctx, req)
}

func (n *Node) routePut(ctx context.Context, req PutRequest) (PutResult, error) {
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	id := HashKey(req.Record.Key)
	var lastErr error
	var down []ID
	for attempt := 0; attempt < n.cfg.LookupRetries; attempt++ {
		res, err := n.lookupExcluding(ctx, id, down)
		if err != nil {
			return PutResult{}, err
		}
		out, err := n.putAt(ctx, res.Owner, req)
		if errors.Is(err, ErrNotOwner) {
			// Routing is stale (a node joined just before the key's owner
			// and not every finger knows yet): walk back from the node we
			// reached through its predecessors.
			out, err = n.putViaPredecessors(ctx, res.Owner, id, req)
		}
		if err == nil {
			return out, nil
		}
		if errors.Is(err, ErrConflict) || ctx.Err() != nil {
			return PutResult{}, err
		}
		lastErr = err
		if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrStopped) {
			n.Suspect(res.Owner)
			down = append(down, res.Owner.ID)
		}
	}
	return PutResult{}, fmt.Errorf("dht: put %q: %w", req.Record.Key, lastErr)
}

func (n *Node) putAt(ctx context.Context, to Peer, req PutRequest) (PutResult, error) {
	if to.ID == n.self.ID {
		return n.HandlePut(ctx, req)
	}
	return n.tr.Put(ctx, to, req)
}

// putViaPredecessors retries a put at the predecessors of a node that said
// it does not own id, as long as id still precedes them.
func (n *Node) putViaPredecessors(ctx context.Context, at Peer, id ID, req PutRequest) (PutResult, error) {
	err := ErrNotOwner
	for i := 0; i < 3 && errors.Is(err, ErrNotOwner); i++ {
		var nb Neighbors
		if at.ID == n.self.ID {
			nb, err = n.HandleGetNeighbors(ctx)
		} else {
			nb, err = n.tr.GetNeighbors(ctx, at)
		}
		if err != nil {
			return PutResult{}, err
		}
		p := nb.Predecessor
		if p.IsZero() || betweenRightIncl(id, p.ID, at.ID) {
			return PutResult{}, ErrNotOwner
		}
		var out PutResult
		out, err = n.putAt(ctx, p, req)
		if err == nil {
			return out, nil
		}
		at = p
	}
	return PutResult{}, err
}

// merge stores r unless it has already expired.
func (n *Node) merge(r Record) bool {
	if r.Expires != 0 && r.Expires <= n.now().UnixNano() {
		return false
	}
	return n.store.Merge(r)
}

// Get returns the live record for key from its owner (or, if the owner is
// unreachable or does not have it yet, from the owner's replicas). It
// returns ErrNotFound when no live copy exists.
func (n *Node) Get(ctx context.Context, key string) (Record, error) {
	ctx, cancel := n.withDefaultTimeout(ctx)
	defer cancel()
	id := HashKey(key)
	var lastErr error
	var down []ID
	for attempt := 0; attempt < n.cfg.LookupRetries; attempt++ {
		res, err := n.lookupExcluding(ctx, id, down)
		if err != nil {
			return Record{}, err
		}
		rec, ok, err := n.getAt(ctx, res.Owner, key)
		if errors.Is(err, ErrNotOwner) {
			// Routing is stale: a node that joined (or came back) just
			// before the node we reached owns the key, and that node
			// holds no copy. Its absence there means nothing: ask its
			// predecessors, as a put does.
			rec, ok, err = n.getViaPredecessors(ctx, res.Owner, id, key)
			if err != nil {
				if ctx.Err() != nil {
					return Record{}, err
				}
				lastErr = err // not the reached node's fault: do not suspect it
				continue
			}
		}
		if err == nil {
			if !ok || !n.live(&rec) {
				return Record{}, fmt.Errorf("dht: get %q: %w", key, ErrNotFound)
			}
			return rec, nil
		}
		if ctx.Err() != nil {
			return Record{}, err
		}
		lastErr = err
		if errors.Is(err, ErrUnreachable) || errors.Is(err, ErrStopped) {
			n.Suspect(res.Owner)
			down = append(down, res.Owner.ID)
		}
	}
	return Record{}, fmt.Errorf("dht: get %q: %w", key, lastErr)
}

func (n *Node) getAt(ctx context.Context, to Peer, key string) (Record, bool, error) {
	if to.ID == n.self.ID {
		return n.HandleGet(ctx, key)
	}
	return n.tr.Get(ctx, to, key)
}

// getViaPredecessors retries a get at the predecessors of a node that said
// it does not own id and holds no copy, as long as id still precedes them.
func (n *Node) getViaPredecessors(ctx context.Context, at Peer, id ID, key string) (Record, bool, error) {
	for i := 0; i < 3; i++ {
		var nb Neighbors
		var err error
		if at.ID == n.self.ID {
			nb, err = n.HandleGetNeighbors(ctx)
		} else {
			nb, err = n.tr.GetNeighbors(ctx, at)
		}
		if err != nil {
			return Record{}, false, err
		}
		p := nb.Predecessor
		if p.IsZero() || betweenRightIncl(id, p.ID, at.ID) {
			return Record{}, false, ErrNotOwner
		}
		rec, ok, err := n.getAt(ctx, p, key)
		if !errors.Is(err, ErrNotOwner) {
			return rec, ok, err
		}
		at = p
	}
	return Record{}, false, ErrNotOwner
}

// live reports whether r is a live (not deleted, not expired) record.
func (n *Node) live(r *Record) bool {
	return !r.Deleted && (r.Expires == 0 || r.Expires > n.now().UnixNano())
}

// HandlePut stores a record as its owner: checks ownership and the
// condition, assigns the next version, stores it, and copies it to the
// successors that hold the replicas.
func (n *Node) HandlePut(ctx context.Context, req PutRequest) (PutResult, error) {
	id := HashKey(req.Record.Key)
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return PutResult{}, ErrStopped
	}
	owns, pred := n.ownsLocked(id), n.pred
	n.mu.Unlock()
	if !owns {
		// The predecessor may have died without us noticing yet: if it
		// does not answer, its range is ours.
		if err := n.tr.Ping(ctx, pred); err == nil || ctx.Err() != nil {
			return PutResult{}, ErrNotOwner
		}
		n.removeFailed(pred)
		if !n.Owns(id) {
			return PutResult{}, ErrNotOwner
		}
	}
	n.mu.Lock()
	replicas := n.replicaTargetsLocked()
	n.mu.Unlock()

	// A new owner may not have received the range yet: read through to
	// the replicas on a miss so a conditional write sees the true version.
	if _, ok := n.store.Get(req.Record.Key); !ok {
		n.readThrough(ctx, req.Record.Key, replicas)
	}
	now := n.now().UnixNano()
	var stored Record
	err := n.store.update(req.Record.Key, func(cur Record, ok bool) (Record, bool, error) {
		liveVersion := uint64(0)
		if ok && !cur.Deleted && (cur.Expires == 0 || cur.Expires > now) {
			liveVersion = cur.Version
		}
		if req.Conditional && req.IfVersion != liveVersion {
			return Record{}, false, fmt.Errorf("%w: %q is at version %d, not %d", ErrConflict, req.Record.Key, liveVersion, req.IfVersion)
		}
		next := req.Record
		next.Version = uint64(now)
		if ok && cur.Version >= next.Version {
			next.Version = cur.Version + 1
		}
		if next.Deleted {
			next.Value = nil
			next.Expires = now + int64(n.cfg.TombstoneTTL)
		}
		stored = next
		return next, true, nil
	})
	if err != nil {
		return PutResult{}, err
	}
	copies := 1
	for _, r := range replicas {
		if err := n.tr.Store(ctx, r, []Record{stored}); err == nil {
			copies++
		}
	}
	return PutResult{Version: stored.Version, Copies: copies}, nil
}

// readThrough merges the newest copy of key held by any of peers. It asks
// with a one-point digest (the arc (id-1, id]), which the peer answers from
// its local table only: a Get could read through again and, while two
// nodes both believe they own the key (a ring still forming), call back
// here forever.
func (n *Node) readThrough(ctx context.Context, key string, peers []Peer) {
	id := HashKey(key)
	for _, p := range peers {
		d := Digest{Lo: id - 1, Hi: id, Buckets: n.store.Summaries(id-1, id, 1)}
		reply, err := n.tr.Sync(ctx, p, d)
		if err != nil {
			continue
		}
		for _, r := range reply.Records {
			if r.Key == key {
				n.merge(r)
			}
		}
	}
}

// withDefaultTimeout bounds a client operation whose caller set no
// deadline, so that no request can wait forever on a peer.
func (n *Node) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 4*n.cfg.RPCTimeout)
}

// replicaTargetsLocked returns the successors that hold replicas of this
// node's range.
func (n *Node) replicaTargetsLocked() []Peer {
	k := n.cfg.Replicas - 1
	if k > len(n.succs) {
		k = len(n.succs)
	}
	return append([]Peer(nil), n.succs[:k]...)
}

// HandleGet returns this node's copy of key. If the node owns the key but
// holds no copy (it joined moments ago and the hand-off is still under
// way), it reads through to its replica holders first. A node that neither
// owns the key nor holds a copy answers ErrNotOwner, not "no record": the
// caller's routing is stale (a node between this one and its predecessor
// joined or came back) and the key may well exist at its owner. (If its
// predecessor does not answer, the range is its own after all.)
func (n *Node) HandleGet(ctx context.Context, key string) (Record, bool, error) {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return Record{}, false, ErrStopped
	}
	id := HashKey(key)
	owns, pred := n.ownsLocked(id), n.pred
	replicas := n.replicaTargetsLocked()
	n.mu.Unlock()
	rec, ok := n.store.Get(key)
	if !ok && !owns {
		// The predecessor may have died without us noticing yet (the
		// caller routed around it): if it does not answer, its range is
		// ours, as in HandlePut.
		if err := n.tr.Ping(ctx, pred); err == nil || ctx.Err() != nil {
			return Record{}, false, ErrNotOwner
		}
		n.removeFailed(pred)
		if !n.Owns(id) {
			return Record{}, false, ErrNotOwner
		}
		n.mu.Lock()
		replicas = n.replicaTargetsLocked()
		n.mu.Unlock()
		owns = true
	}
	if !ok && owns {
		n.readThrough(ctx, key, replicas)
		rec, ok = n.store.Get(key)
	}
	return rec, ok, nil
}

// HandleStore merges records pushed by an owner (replication) or by a
// node handing its data over. Newer versions win.
func (n *Node) HandleStore(_ context.Context, recs []Record) error {
	if n.isStopped() {
		return ErrStopped
	}
	for _, r := range recs {
		n.merge(r)
	}
	return nil
}

// HandleSync compares an owner's digest of (Lo, Hi] with this node's copy
// and returns the differing buckets with this node's records in them.
func (n *Node) HandleSync(_ context.Context, d Digest) (DigestReply, error) {
	if n.isStopped() {
		return DigestReply{}, ErrStopped
	}
	if len(d.Buckets) == 0 || len(d.Buckets) > 4096 {
		return DigestReply{}, fmt.Errorf("dht: sync: bad bucket count %d", len(d.Buckets))
	}
	n.store.Expire(n.now().UnixNano())
	mine := n.store.Summaries(d.Lo, d.Hi, len(d.Buckets))
	var reply DigestReply
	for i := range mine {
		if mine[i] != d.Buckets[i] {
			reply.Differ = append(reply.Differ, i)
		}
	}
	if len(reply.Differ) > 0 {
		reply.Records = n.store.BucketRecords(d.Lo, d.Hi, len(d.Buckets), reply.Differ)
		if len(reply.Records) > n.cfg.MaxBatch {
			reply.Records, reply.Partial = nil, true
		}
	}
	return reply, nil
}
