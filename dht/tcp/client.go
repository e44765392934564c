package tcp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsn-ims/dsn/dht"
)

// Ping checks that to answers. When both to.ID and the answering node's ID
// are known and differ, another node now listens at to.Addr, and Ping
// reports to as unreachable.
func (t *Transport) Ping(ctx context.Context, to dht.Peer) error {
	resp, err := t.call(ctx, to, &message{op: opPing})
	if err != nil {
		return err
	}
	if to.ID != 0 && resp.peer.ID != 0 && resp.peer.ID != to.ID {
		return fmt.Errorf("dht/tcp: ping %s: answered by %s, not %s: %w", to.Addr, resp.peer, to.ID, dht.ErrUnreachable)
	}
	return nil
}

// GetNeighbors asks to for its predecessor and successor list.
func (t *Transport) GetNeighbors(ctx context.Context, to dht.Peer) (dht.Neighbors, error) {
	resp, err := t.call(ctx, to, &message{op: opGetNeighbors})
	if err != nil {
		return dht.Neighbors{}, err
	}
	return resp.neighbors, nil
}

// Notify tells to that self might be its predecessor.
func (t *Transport) Notify(ctx context.Context, to dht.Peer, self dht.Peer) error {
	_, err := t.call(ctx, to, &message{op: opNotify, peer: self})
	return err
}

// FindNext asks to for the next step of a lookup of id, skipping exclude.
func (t *Transport) FindNext(ctx context.Context, to dht.Peer, id dht.ID, exclude []dht.ID) (dht.Step, error) {
	resp, err := t.call(ctx, to, &message{op: opFindNext, target: id, exclude: exclude})
	if err != nil {
		return dht.Step{}, err
	}
	return resp.step, nil
}

// Leave tells to that notice.Leaving leaves the ring.
func (t *Transport) Leave(ctx context.Context, to dht.Peer, notice dht.LeaveNotice) error {
	_, err := t.call(ctx, to, &message{op: opLeave, notice: notice})
	return err
}

// Put asks to, the owner of req.Record.Key, to store the record. A Put
// whose connection is lost is not retried: the owner may have applied it.
func (t *Transport) Put(ctx context.Context, to dht.Peer, req dht.PutRequest) (dht.PutResult, error) {
	resp, err := t.call(ctx, to, &message{op: opPut, put: req})
	if err != nil {
		return dht.PutResult{}, err
	}
	return resp.putResult, nil
}

// Get reads key from to.
func (t *Transport) Get(ctx context.Context, to dht.Peer, key string) (dht.Record, bool, error) {
	resp, err := t.call(ctx, to, &message{op: opGet, key: key})
	if err != nil {
		return dht.Record{}, false, err
	}
	return resp.record, resp.found, nil
}

// Store hands recs to to (replication and hand-off).
func (t *Transport) Store(ctx context.Context, to dht.Peer, recs []dht.Record) error {
	_, err := t.call(ctx, to, &message{op: opStore, records: recs})
	return err
}

// Sync sends an anti-entropy digest to to.
func (t *Transport) Sync(ctx context.Context, to dht.Peer, d dht.Digest) (dht.DigestReply, error) {
	resp, err := t.call(ctx, to, &message{op: opSync, digest: d})
	if err != nil {
		return dht.DigestReply{}, err
	}
	return resp.reply, nil
}

// call runs one RPC. Errors are prefixed "dht/tcp: <op> <addr>:" and wrap:
// dht.ErrUnreachable (no connection, connection lost, ctx done: ctx's
// error is wrapped too), plus dht.ErrUnauthenticated when the key proof
// failed; dht.ErrStopped once the transport is closed; a *RemoteError for
// an error the remote handler returned; ErrMessageTooLarge for a request over
// MaxMessageSize (nothing was sent). A call lost together with a reused
// connection (the peer restarted, say) is retried once on a fresh
// connection unless it is a Put.
func (t *Transport) call(ctx context.Context, to dht.Peer, req *message) (*message, error) {
	req.kind = kindRequest
	fail := func(err error) error { return fmt.Errorf("dht/tcp: %s %s: %w", req.op, to.Addr, err) }
	if to.Addr == "" {
		return nil, fail(fmt.Errorf("peer %q has no address: %w", to.Name, dht.ErrUnreachable))
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fail(fmt.Errorf("%w: %w", dht.ErrUnreachable, err))
		}
		c, reused, err := t.acquire(ctx, to.Addr)
		if err != nil {
			return nil, fail(err)
		}
		req.timeoutMs = budgetMs(ctx)
		resp, err := c.roundTrip(ctx, req)
		t.release(c)
		switch {
		case err == nil && resp.op != req.op:
			c.fail(fmt.Errorf("%w: %s response to a %s request", errMalformed, resp.op, req.op))
			return nil, fail(fmt.Errorf("%w: %w", lost(c.cause()), dht.ErrUnreachable))
		case err == nil && resp.code != codeOK:
			return nil, remoteError(req.op, to.Addr, resp)
		case err == nil:
			return resp, nil
		case errors.Is(err, dht.ErrStopped):
			return nil, fail(err)
		case errors.Is(err, errConnLost) && reused && attempt == 0 && req.op.idempotent() && ctx.Err() == nil:
			continue
		case errors.Is(err, errConnLost), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return nil, fail(fmt.Errorf("%w: %w", err, dht.ErrUnreachable))
		default:
			return nil, fail(err)
		}
	}
}

// budgetMs is the time left before ctx's deadline in whole milliseconds,
// rounded up; 0 when ctx has no deadline.
func budgetMs(ctx context.Context) uint64 {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 1
	}
	return uint64((left + time.Millisecond - 1) / time.Millisecond)
}
