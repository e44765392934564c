package tcp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// clientConn is one outgoing, multiplexed DHT connection. Any number of
// calls share it: each request carries an ID, the read loop hands each
// response to the call waiting for that ID, so a slow call never holds up
// another one.
type clientConn struct {
	*frameConn
	t      *Transport
	ring   *keyring // the keyring it was authenticated with
	sess   session
	addr   string
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *message // calls waiting for a response
	err     error                    // why the connection ended; set before dead closes

	dead     chan struct{}
	broken   atomic.Bool // set first thing by fail
	failOnce sync.Once

	// Guarded by t.mu (pool bookkeeping).
	inflight  int
	used      bool // a call was started on it before
	idleSince time.Time
	retired   bool // SetKeys: take no new calls, close after the last one
}

// roundTrip sends req (assigning its ID) and waits for the response, for
// ctx, or for the connection to end. Errors: ctx's error, errConnLost
// wrapping the cause, or ErrMessageTooLarge.
func (c *clientConn) roundTrip(ctx context.Context, req *message) (*message, error) {
	req.id = c.nextID.Add(1)
	frame, err := encodeFrame(req, c.t.cfg.MaxMessageSize)
	if err != nil {
		return nil, err
	}
	ch := make(chan *message, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, lost(err)
	}
	c.pending[req.id] = ch
	c.mu.Unlock()

	broken, err := c.write(ctx, frame)
	if err != nil {
		c.forget(req.id)
		if broken {
			c.fail(err)
			return nil, lost(err)
		}
		return nil, err
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.dead:
		select {
		case resp := <-ch: // arrived just before the end
			return resp, nil
		default:
			return nil, lost(c.cause())
		}
	case <-ctx.Done():
		c.forget(req.id)
		return nil, ctx.Err()
	}
}

func lost(cause error) error { return fmt.Errorf("%w: %w", errConnLost, cause) }

func (c *clientConn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *clientConn) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection once: records why, wakes every waiting call,
// closes the socket and takes the connection out of the pool.
func (c *clientConn) fail(err error) {
	c.failOnce.Do(func() {
		// Out of the pool first, so that a call woken below and retrying
		// cannot pick this connection again.
		c.broken.Store(true)
		c.t.dropConn(c)
		c.mu.Lock()
		c.err = err
		c.pending = nil
		c.mu.Unlock()
		close(c.dead)
		_ = c.nc.Close()
	})
}

// readLoop delivers responses until the connection ends.
func (c *clientConn) readLoop() {
	for {
		pt, err := c.opener.next()
		if err == nil {
			var m message
			if m, err = decodeMessage(pt); err == nil && m.kind != kindResponse {
				err = fmt.Errorf("%w: request on a client connection", errMalformed)
			}
			if err == nil {
				c.deliver(&m)
				continue
			}
		}
		if isFrameError(err) {
			c.t.stats.badFrames.Add(1)
			c.t.log.Warn("bad frame from peer, closing connection", zap.String("peer", c.addr), zap.Error(err))
		}
		c.fail(err)
		return
	}
}

// deliver hands m to the call waiting for it; a response to a call that
// gave up is dropped.
func (c *clientConn) deliver(m *message) {
	c.mu.Lock()
	ch := c.pending[m.id]
	delete(c.pending, m.id)
	c.mu.Unlock()
	if ch != nil {
		ch <- m
	}
}
