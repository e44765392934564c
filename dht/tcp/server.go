package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
)

// serveConn authenticates an incoming DHT connection (its prefix byte
// already read) and answers its requests until it ends. Each request runs
// on its own goroutine, at most MaxInflight at once per connection; when
// all are busy the read loop stops reading, which pushes back on the
// caller through TCP.
func (t *Transport) serveConn(nc net.Conn) {
	ring := t.ring.Load()
	sess, err := serverHandshake(nc, ring, t.rand)
	if err != nil {
		if errors.Is(err, dht.ErrUnauthenticated) {
			t.stats.handshakesRejected.Add(1)
			t.log.Warn("peer failed authentication", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		} else {
			t.stats.handshakesFailed.Add(1)
			t.log.Debug("handshake failed", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
		}
		return
	}
	if !t.admitInbound(nc, sess.key) {
		t.log.Info("peer's cluster key was removed during its handshake; closing", zap.Stringer("remote", nc.RemoteAddr()))
		return
	}
	t.noteKey(zap.Stringer("remote", nc.RemoteAddr()), ring, sess)
	_ = nc.SetDeadline(time.Time{})
	t.stats.accepted.Add(1)
	c := newFrameConn(nc, sess, t.cfg.MaxMessageSize, t.cfg.WriteTimeout)
	sem := make(chan struct{}, t.cfg.MaxInflight)
	for {
		pt, err := c.opener.next()
		if err != nil {
			t.readEnded(nc, err)
			return
		}
		req, err := decodeMessage(pt)
		if err != nil && req.kind == kindRequest && req.id != 0 {
			// Understood enough to answer: say what was wrong.
			t.respond(c, &message{kind: kindResponse, id: req.id, op: req.op, code: codeError, text: errorText(err)})
			continue
		}
		if err == nil && req.kind != kindRequest {
			err = fmt.Errorf("%w: response on a server connection", errMalformed)
		}
		if err != nil {
			t.readEnded(nc, err)
			return
		}
		select {
		case sem <- struct{}{}:
		case <-t.ctx.Done():
			return
		}
		if !t.goroutine(func() {
			defer func() { <-sem }()
			t.answer(c, &req)
		}) {
			return
		}
	}
}

// readEnded logs and counts why a server connection's read loop ended.
func (t *Transport) readEnded(nc net.Conn, err error) {
	if isFrameError(err) {
		t.stats.badFrames.Add(1)
		t.log.Warn("bad frame from peer, closing connection", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
	}
}

// maxBudgetMs is the largest caller deadline applied to a handler (about a
// year); a longer one, which would overflow time.Duration if large enough,
// means no deadline.
const maxBudgetMs = 365 * 24 * 3600 * 1000

// answer runs one request through the handler, with the caller's remaining
// deadline, and sends the response.
func (t *Transport) answer(c *frameConn, req *message) {
	ctx := t.ctx
	if req.timeoutMs > 0 && req.timeoutMs <= maxBudgetMs {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.timeoutMs)*time.Millisecond)
		defer cancel()
	}
	resp := t.dispatch(ctx, req)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller's deadline, which is no later than this one, has
		// passed: it gave up already and reports the timeout itself.
		return
	}
	t.respond(c, resp)
}

// respond sends resp; a response too large for the wire is replaced by an
// error saying so. A failed write closes the connection, which ends its
// read loop.
func (t *Transport) respond(c *frameConn, resp *message) {
	frame, err := encodeFrame(resp, t.cfg.MaxMessageSize)
	if err != nil {
		resp = &message{kind: kindResponse, id: resp.id, op: resp.op, code: codeError, text: errorText(err)}
		if frame, err = encodeFrame(resp, t.cfg.MaxMessageSize); err != nil {
			_ = c.nc.Close()
			return
		}
	}
	if broken, err := c.write(t.ctx, frame); err != nil {
		t.log.Debug("writing response failed", zap.Stringer("remote", c.nc.RemoteAddr()), zap.Error(err))
		if broken {
			_ = c.nc.Close()
		}
	}
}

// dispatch calls the handler method for req.op. A panicking handler is
// answered with an error and logged with its stack, rather than taking the
// node down.
func (t *Transport) dispatch(ctx context.Context, req *message) (resp *message) {
	resp = &message{kind: kindResponse, id: req.id, op: req.op}
	fail := func(err error) *message {
		resp.code, resp.text = codeOf(err), errorText(err)
		return resp
	}
	hp := t.handler.Load()
	if hp == nil {
		return fail(fmt.Errorf("dht/tcp: %s: not serving: %w", t.addr, dht.ErrStopped))
	}
	h := *hp
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("handler panicked", zap.Stringer("op", req.op), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			resp = fail(fmt.Errorf("dht/tcp: %s handler failed internally", req.op))
		}
	}()
	var err error
	switch req.op {
	case opPing:
		resp.peer, err = h.HandlePing(ctx)
	case opGetNeighbors:
		resp.neighbors, err = h.HandleGetNeighbors(ctx)
	case opNotify:
		err = h.HandleNotify(ctx, req.peer)
	case opFindNext:
		resp.step, err = h.HandleFindNext(ctx, req.target, req.exclude)
	case opLeave:
		err = h.HandleLeave(ctx, req.notice)
	case opPut:
		resp.putResult, err = h.HandlePut(ctx, req.put)
	case opGet:
		resp.record, resp.found, err = h.HandleGet(ctx, req.key)
	case opStore:
		err = h.HandleStore(ctx, req.records)
	case opSync:
		resp.reply, err = h.HandleSync(ctx, req.digest)
	default:
		err = fmt.Errorf("dht/tcp: unknown op %s", req.op)
	}
	if err != nil {
		return fail(err)
	}
	return resp
}
