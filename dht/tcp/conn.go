package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"
)

// readBufferSize is the bufio buffer on each authenticated connection.
const readBufferSize = 16 << 10

// frameConn is an authenticated connection: sealed frames out, opened
// frames in. Writers take turns through wlock (a channel, so that waiting
// for it honours a context); one read loop owns the opener.
type frameConn struct {
	nc           net.Conn
	wlock        chan struct{}
	sealer       sealer // guarded by wlock
	opener       opener // owned by the read loop
	writeTimeout time.Duration
}

func newFrameConn(nc net.Conn, s session, maxMessage int, writeTimeout time.Duration) *frameConn {
	return &frameConn{
		nc:           nc,
		wlock:        make(chan struct{}, 1),
		sealer:       sealer{aead: s.send},
		opener:       opener{r: bufio.NewReaderSize(nc, readBufferSize), aead: s.recv, max: maxMessage},
		writeTimeout: writeTimeout,
	}
}

// write seals and sends one frame built by encodeFrame. The write deadline
// is the earlier of ctx's deadline and writeTimeout from now. broken
// reports that the stream can no longer be used (part of a frame may have
// been sent); the caller must then close the connection. A write that timed
// out on ctx's deadline before sending a byte leaves the stream intact.
func (c *frameConn) write(ctx context.Context, frame []byte) (broken bool, err error) {
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.wlock }()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	deadline := time.Now().Add(c.writeTimeout)
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if hasCtxDeadline && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	} else {
		hasCtxDeadline = false
	}
	out, err := c.sealer.seal(frame)
	if err != nil {
		return true, err
	}
	_ = c.nc.SetWriteDeadline(deadline)
	n, err := c.nc.Write(out)
	if n > 0 {
		c.sealer.commit()
	}
	if err == nil {
		return false, nil
	}
	if n == 0 && hasCtxDeadline && errors.Is(err, os.ErrDeadlineExceeded) {
		return false, context.DeadlineExceeded
	}
	return true, err
}

// encodeFrame encodes m into a new buffer laid out for sealer.seal: header
// room, plaintext, spare capacity for the tag. Messages over max fail with
// ErrMessageTooLarge.
func encodeFrame(m *message, max int) ([]byte, error) {
	buf := make([]byte, frameHeaderLen, 256)
	buf = appendMessage(buf, m)
	if n := len(buf) - frameHeaderLen; n > max {
		return nil, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrMessageTooLarge, m.op, n, max)
	}
	return slices.Grow(buf, tagLen), nil // room for the tag: seal in place
}

// isFrameError reports whether a read-loop error means the peer sent a bad
// frame, as opposed to the connection ending.
func isFrameError(err error) bool {
	return errors.Is(err, errFrameTooLarge) || errors.Is(err, errFrameAuth) ||
		errors.Is(err, errMalformed) || errors.Is(err, errSeqExhausted)
}
