package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
)

// peerConns are the outgoing connections to one peer address.
type peerConns struct {
	conns []*clientConn
	dial  *dialCall // in progress, or nil
}

// dialCall is one connection attempt that callers can wait for. It runs on
// its own goroutine, bounded by DialTimeout + HandshakeTimeout and by
// Close, not by the context of the call that started it, so callers that
// give up early do not waste it.
type dialCall struct {
	done chan struct{}
	err  error // set before done closes
}

// acquire returns a connection to addr for one call, dialing if there is
// none. It prefers an idle connection, then opens another one in the
// background while all are busy and fewer than ConnsPerPeer exist, and
// meanwhile shares the least busy one. reused reports that the connection
// carried a call before (so a lost connection may be a stale one). Every
// successful acquire must be paired with release.
func (t *Transport) acquire(ctx context.Context, addr string) (c *clientConn, reused bool, err error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, false, errClosed
		}
		pc := t.peers[addr]
		if pc == nil {
			pc = &peerConns{}
			t.peers[addr] = pc
		}
		var usable int
		if c, usable = leastBusy(pc.conns); c != nil {
			if c.inflight > 0 && usable < t.cfg.ConnsPerPeer && pc.dial == nil {
				pc.dial = t.startDial(addr)
			}
			c.inflight++
			reused, c.used = c.used, true
			t.mu.Unlock()
			return c, reused, nil
		}
		if pc.dial == nil {
			pc.dial = t.startDial(addr)
		}
		d := pc.dial
		t.mu.Unlock()

		select {
		case <-d.done:
			if d.err != nil {
				return nil, false, d.err
			}
			// The new connection is in the pool; loop to take it.
		case <-ctx.Done():
			return nil, false, fmt.Errorf("%w: %w", dht.ErrUnreachable, ctx.Err())
		}
	}
}

// leastBusy returns the usable connection with the fewest calls in
// flight, and how many are usable. Called with t.mu held.
func leastBusy(conns []*clientConn) (best *clientConn, usable int) {
	for _, c := range conns {
		if c.broken.Load() || c.retired {
			continue // being taken out of the pool, or draining
		}
		usable++
		if best == nil || c.inflight < best.inflight {
			best = c
		}
	}
	return best, usable
}

// release ends one call's use of c, and closes c if it was retired and
// this was its last call.
func (t *Transport) release(c *clientConn) {
	t.mu.Lock()
	c.inflight--
	if c.inflight == 0 {
		c.idleSince = time.Now()
	}
	drained := c.retired && c.inflight == 0
	t.mu.Unlock()
	if drained {
		c.fail(errKeyRetired)
	}
}

// startDial starts a connection attempt to addr. Called with t.mu held and
// the transport open.
func (t *Transport) startDial(addr string) *dialCall {
	d := &dialCall{done: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		c, err := t.dial(addr)
		t.mu.Lock()
		if pc := t.peers[addr]; pc != nil && pc.dial == d {
			pc.dial = nil
		}
		if err == nil && t.closed {
			err = errClosed
		}
		// Keys rotated during the handshake and this one is not the new
		// primary: drop it, and the waiting callers dial again.
		stale := err == nil && c.ring != t.ring.Load() && t.ring.Load().index(c.sess.key) != 0
		if err == nil && !stale {
			pc := t.peers[addr]
			if pc == nil {
				pc = &peerConns{}
				t.peers[addr] = pc
			}
			pc.conns = append(pc.conns, c)
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				c.readLoop()
			}()
		}
		d.err = err
		t.mu.Unlock()
		if err != nil || stale {
			if c != nil {
				_ = c.nc.Close()
			}
			t.dropEmpty(addr)
		}
		close(d.done)
	}()
	return d
}

// dial connects to addr and authenticates. Errors wrap dht.ErrUnreachable,
// and dht.ErrUnauthenticated as well when the key proof failed.
func (t *Transport) dial(addr string) (*clientConn, error) {
	t.stats.dials.Add(1)
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return setUserTimeout(rc, t.cfg.UserTimeout)
	}}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.stats.dialFailures.Add(1)
		if t.ctx.Err() != nil {
			return nil, errClosed
		}
		return nil, fmt.Errorf("dial: %w: %w", err, dht.ErrUnreachable)
	}
	_ = nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	ring := t.ring.Load()
	sess, err := clientHandshake(nc, ring, t.rand, prefixDHT)
	if err != nil {
		_ = nc.Close()
		t.stats.dialFailures.Add(1)
		if errors.Is(err, dht.ErrUnauthenticated) {
			t.stats.handshakesRejected.Add(1)
			t.log.Warn("peer failed authentication", zap.String("peer", addr), zap.Error(err))
		}
		if t.ctx.Err() != nil {
			return nil, errClosed
		}
		return nil, fmt.Errorf("%w: %w", err, dht.ErrUnreachable)
	}
	_ = nc.SetDeadline(time.Time{})
	t.noteKey(zap.String("peer", addr), ring, sess)
	return &clientConn{
		frameConn: newFrameConn(nc, sess, t.cfg.MaxMessageSize, t.cfg.WriteTimeout),
		t:         t,
		ring:      ring,
		sess:      sess,
		addr:      addr,
		pending:   make(map[uint64]chan *message),
		dead:      make(chan struct{}),
		idleSince: time.Now(),
	}, nil
}

// dropConn removes a failed connection from the pool.
func (t *Transport) dropConn(c *clientConn) {
	t.mu.Lock()
	if pc := t.peers[c.addr]; pc != nil {
		pc.conns = slices.DeleteFunc(pc.conns, func(x *clientConn) bool { return x == c })
	}
	t.mu.Unlock()
	t.dropEmpty(c.addr)
}

// dropEmpty forgets a peer address with no connections and no dial.
func (t *Transport) dropEmpty(addr string) {
	t.mu.Lock()
	if pc := t.peers[addr]; pc != nil && len(pc.conns) == 0 && pc.dial == nil {
		delete(t.peers, addr)
	}
	t.mu.Unlock()
}

// janitor closes outgoing connections idle for longer than IdleTimeout.
func (t *Transport) janitor() {
	tick := time.NewTicker(t.cfg.IdleTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case now := <-tick.C:
			for _, c := range t.takeIdle(now) {
				c.fail(errIdleClosed)
			}
		}
	}
}

// takeIdle removes and returns the connections idle since before
// now - IdleTimeout.
func (t *Transport) takeIdle(now time.Time) []*clientConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var idle []*clientConn
	for _, pc := range t.peers {
		pc.conns = slices.DeleteFunc(pc.conns, func(c *clientConn) bool {
			if c.inflight == 0 && now.Sub(c.idleSince) >= t.cfg.IdleTimeout {
				idle = append(idle, c)
				return true
			}
			return false
		})
	}
	return idle
}
