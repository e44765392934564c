package overload

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Listener wraps the TCP listener a SIP stack accepts from. It holds at
// most Config.MaxConns connections (Config.MaxConnsPerIP from one
// address): a connection over the limit is accepted and closed at once,
// so the backlog never fills. Accept retries transient errors (out of
// file descriptors) with a backoff instead of returning them: sipgo stops
// serving TCP on the first Accept error.
//
// Every connection it returns frames its input (see framer) and hands the
// stack only complete messages the gate admits, answering the others 503
// itself; it closes a connection that sends a message over
// Config.MaxMessage (after a 513), that cannot be framed, that stays
// silent between messages for Config.IdleTimeout, that takes longer than
// Config.MessageTimeout to complete a message, or that does not read its
// responses for Config.WriteTimeout. Per connection it holds one read
// buffer and at most one message.
func (g *Gate) Listener(l net.Listener) net.Listener {
	return &listener{Listener: l, g: g, perIP: make(map[netip.Addr]int)}
}

type listener struct {
	net.Listener
	g *Gate

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func (l *listener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !transientAcceptError(err) {
				return nil, err
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ip := remoteIP(c)
		if why := l.reserve(ip); why != "" {
			l.g.metrics.Dropped("tcp", why)
			c.Close()
			continue
		}
		return newConn(c, l, ip), nil
	}
}

// reserve counts a new connection from ip, or says which limit it hits.
func (l *listener) reserve(ip netip.Addr) Drop {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.g.cfg.MaxConns:
		return DropConnLimit
	case l.g.cfg.MaxConnsPerIP > 0 && l.perIP[ip] >= l.g.cfg.MaxConnsPerIP:
		return DropConnLimitIP
	}
	l.total++
	l.perIP[ip]++
	l.g.metrics.Conns(l.total)
	return ""
}

func (l *listener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.g.metrics.Conns(l.total)
}

// Conns returns the number of connections the listener holds.
func (l *listener) Conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func transientAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// conn is one inbound TCP connection seen through the gate. Read is
// called by the stack's single read goroutine; Write by any goroutine.
type conn struct {
	net.Conn
	l  *listener
	g  *Gate
	ip netip.Addr

	fr       *framer
	rbuf     []byte
	out      []byte // admitted input not yet returned by Read
	msgStart time.Time

	wmu       sync.Mutex // serialises the gate's own writes with the stack's
	closeOnce sync.Once
}

func newConn(c net.Conn, l *listener, ip netip.Addr) *conn {
	return &conn{Conn: c, l: l, g: l.g, ip: ip, fr: newFramer(l.g.cfg.MaxMessage), rbuf: make([]byte, 4096)}
}

// readDeadline is when the current read must have returned: IdleTimeout
// after now between messages, MessageTimeout after the first byte of an
// incomplete message (not moved by further bytes).
func readDeadline(cfg Config, now, msgStart time.Time, pending bool) (time.Time, Drop) {
	if pending {
		return msgStart.Add(cfg.MessageTimeout), DropSlow
	}
	return now.Add(cfg.IdleTimeout), DropIdle
}

func (c *conn) Read(b []byte) (int, error) {
	for len(c.out) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads once from the socket and frames what arrived.
func (c *conn) fill() error {
	now := c.g.now()
	pending := c.fr.pending()
	deadline, why := readDeadline(c.g.cfg, now, c.msgStart, pending)
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	n, err := c.Conn.Read(c.rbuf)
	if n > 0 {
		c.fr.write(c.rbuf[:n])
		if !pending {
			c.msgStart = now
		}
		if ferr := c.frame(); ferr != nil {
			c.lingerClose()
			return ferr
		}
		if !c.fr.pending() {
			c.msgStart = time.Time{}
		}
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.g.metrics.Dropped("tcp", why)
			c.Close()
			if why == DropSlow {
				return fmt.Errorf("%w (%v): %w", ErrMessageTimeout, c.g.cfg.MessageTimeout, os.ErrDeadlineExceeded)
			}
			return fmt.Errorf("%w (%v): %w", ErrIdleTimeout, c.g.cfg.IdleTimeout, os.ErrDeadlineExceeded)
		}
		if len(c.out) > 0 {
			return nil // hand over what arrived; the error comes again
		}
		return err
	}
	return nil
}

// frame takes every complete unit out of the framer: admitted messages go
// to out, rejected requests are answered, pings get their pong.
func (c *conn) frame() error {
	for {
		u, msg, h, err := c.fr.next()
		switch {
		case errors.Is(err, errNeedMore):
			return nil
		case errors.Is(err, ErrMessageTooLarge):
			c.g.metrics.Dropped("tcp", DropOversized)
			if h.Len > 0 && !h.Response && h.Method != "ACK" {
				c.answer(c.fr.buf[c.fr.off:], &h, 513, "Message Too Large", 0)
			}
			return fmt.Errorf("%w (limit %d bytes)", ErrMessageTooLarge, c.g.cfg.MaxMessage)
		case err != nil:
			c.g.metrics.Dropped("tcp", DropMalformed)
			if h.Len > 0 && !h.Response && h.Method != "ACK" {
				c.answer(c.fr.buf[c.fr.off:], &h, 400, "Missing Content-Length", 0)
			}
			return err
		}
		if u == unitPing {
			c.writeRaw([]byte("\r\n"))
			continue
		}
		switch d := c.g.Admit(&h); d.Verdict {
		case Admit:
			c.out = append(c.out, msg...)
		case Reject:
			c.answer(msg, &h, 503, "Service Unavailable", c.g.RetryAfterSeconds())
		}
	}
}

func (c *conn) answer(msg []byte, h *Head, code int, reason string, retryAfter int) {
	bp := respBufs.Get().(*[]byte)
	resp, _ := appendResponse((*bp)[:0], msg, h, code, reason, retryAfter, netip.AddrPort{})
	c.writeRaw(resp)
	*bp = resp
	respBufs.Put(bp)
}

func (c *conn) writeRaw(b []byte) { _, _ = c.Write(b) }

// Write sends with a deadline; a peer that does not take the bytes within
// WriteTimeout is disconnected.
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Conn.SetWriteDeadline(c.g.now().Add(c.g.cfg.WriteTimeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.g.metrics.Dropped("tcp", DropWriteTimeout)
		}
		c.Close()
	}
	return n, err
}

// SetReadDeadline is ignored: the connection manages its own read
// deadlines (sipgo sets one only when its ReadTimeout is configured).
func (c *conn) SetReadDeadline(time.Time) error { return nil }

// lingerClose closes after a final error response: it sends FIN behind
// the response and reads what the peer still sends, for at most a second
// and 256 KiB, before closing. Closing with unread input would send RST,
// and the peer's kernel would throw the response away with it.
func (c *conn) lingerClose() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.Conn.SetReadDeadline(c.g.now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, c.Conn, 256<<10)
	}
	c.Close()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.l.release(c.ip) })
	return err
}
