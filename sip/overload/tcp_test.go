package overload

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memListener hands out the server ends of in-memory connections (net.Pipe)
// with the remote address the test chose; Accept can be told to fail.
type memListener struct {
	conns  chan net.Conn
	errs   chan error
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn, 16), errs: make(chan error, 16), closed: make(chan struct{})}
}

var _ net.Listener = (*memListener)(nil)

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *memListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

// dial queues a connection from ip and returns the client end.
func (l *memListener) dial(ip string) net.Conn {
	client, server := net.Pipe()
	l.conns <- &addrConn{Conn: server, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	return client
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// serve is the stack's side: it accepts one connection through the gate's
// listener and reads from it until an error, sending what it read.
type served struct {
	conn net.Conn
	data chan []byte
	err  chan error
}

func accept(t *testing.T, l net.Listener) *served {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{conn: c, data: make(chan []byte, 64), err: make(chan error, 1)}
	go func() {
		buf := make([]byte, 32768)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.data <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				s.err <- err
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

// next waits for the next bytes the stack read.
func (s *served) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-s.data:
		return b
	case err := <-s.err:
		t.Fatalf("stack read error %v, want data", err)
	case <-time.After(5 * time.Second):
		t.Fatal("stack read nothing in 5 s")
	}
	return nil
}

// readErr waits for the stack's read error.
func (s *served) readErr(t *testing.T) error {
	t.Helper()
	select {
	case b := <-s.data:
		t.Fatalf("stack read %q, want an error", b)
	case err := <-s.err:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no read error in 5 s")
	}
	return nil
}

// tcpGate is testGate on the real clock: connections set real deadlines.
func tcpGate(t *testing.T, mod func(*Config)) (*Gate, *fakeLoad, *countMetrics) {
	t.Helper()
	g, fl, _, m := testGate(t, mod)
	g.now = time.Now
	return g, fl, m
}

// readResponse reads one SIP response from the client end.
func readResponse(t *testing.T, r *bufio.Reader) []byte {
	t.Helper()
	var b bytes.Buffer
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading response: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.Bytes()
		}
	}
}

func TestConnAdmitsRejectsAndPongs(t *testing.T) {
	g, fl, m := tcpGate(t, nil)
	ml := newMemListener()
	l := g.Listener(ml)
	client := ml.dial("192.0.2.7")
	s := accept(t, l)
	r := bufio.NewReader(client)
	write := func(b []byte) {
		t.Helper()
		if _, err := client.Write(b); err != nil {
			t.Fatal(err)
		}
	}

	// A message split over writes reaches the stack whole, once complete.
	inv := invite("z9hG4bKt1")
	write(inv[:30])
	write(inv[30:])
	if got := s.next(t); !bytes.Equal(got, inv) {
		t.Fatalf("stack read %q", got)
	}
	// A ping gets a pong and never reaches the stack.
	write([]byte("\r\n\r\n"))
	if pong, _ := r.ReadString('\n'); pong != "\r\n" {
		t.Fatalf("pong %q", pong)
	}
	// Overloaded: a new request is answered 503 on the connection; an
	// in-dialog request in the same write still reaches the stack.
	fl.l = Load{InFlight: 10}
	bye := inDialog("BYE", "z9hG4bKt2")
	write(append(invite("z9hG4bKt3"), bye...))
	res := parseResponse(t, readResponse(t, r))
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("got %d", res.StatusCode)
	}
	if got := s.next(t); !bytes.Equal(got, bye) {
		t.Fatalf("stack read %q", got)
	}
	if m.rej("INVITE/inflight") != 1 || m.open() != 1 {
		t.Fatalf("drops %d, open %d", m.drops(), m.open())
	}
}

func TestConnTooLargeAndMalformed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     []byte
		status int
		err    error
	}{
		{"huge Content-Length", msg("", "INVITE sip:b@h SIP/2.0", "Via: SIP/2.0/TCP a;branch=z9hG4bKbig", "To: <sip:b@h>",
			"Call-ID: c", "CSeq: 1 INVITE", "Content-Length: 100000000"), 513, ErrMessageTooLarge},
		{"endless headers", append([]byte("INVITE sip:b@h SIP/2.0\r\n"), bytes.Repeat([]byte("X-A: b\r\n"), 10000)...), 0, ErrMessageTooLarge},
		{"no Content-Length", []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bKn\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"), 400, ErrMalformed},
		{"not SIP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, _, m := tcpGate(t, func(c *Config) { c.MaxMessage = 65535 })
			ml := newMemListener()
			l := g.Listener(ml)
			client := ml.dial("192.0.2.7")
			s := accept(t, l)
			go client.Write(tt.in) // the pipe blocks until read; the gate stops reading
			r := bufio.NewReader(client)
			if tt.status != 0 {
				if res := parseResponse(t, readResponse(t, r)); res.StatusCode != tt.status {
					t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
				}
			}
			if err := s.readErr(t); !errors.Is(err, tt.err) {
				t.Fatalf("read error %v, want %v", err, tt.err)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("connection not closed: %v", err)
			}
			if m.open() != 0 || m.drops() != 1 {
				t.Fatalf("drops %d, open %d", m.drops(), m.open())
			}
		})
	}
}

func TestConnTimeouts(t *testing.T) {
	mod := func(c *Config) { c.MessageTimeout, c.IdleTimeout = 100*time.Millisecond, 300*time.Millisecond }
	t.Run("slow message", func(t *testing.T) {
		g, _, m := tcpGate(t, mod)
		ml := newMemListener()
		client := ml.dial("192.0.2.7")
		s := accept(t, g.Listener(ml))
		start := time.Now()
		// Trickle a byte every 20 ms: progress does not move the deadline.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			inv := invite("z9hG4bKslow")
			for i := range inv {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := client.Write(inv[i : i+1]); err != nil {
					return
				}
			}
		}()
		err := s.readErr(t)
		if !errors.Is(err, ErrMessageTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
		if m.drop("tcp/message_timeout") != 1 {
			t.Fatalf("drops %d", m.drops())
		}
	})
	t.Run("idle", func(t *testing.T) {
		g, _, m := tcpGate(t, mod)
		ml := newMemListener()
		ml.dial("192.0.2.7")
		s := accept(t, g.Listener(ml))
		if err := s.readErr(t); !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("err %v", err)
		}
		if m.drop("tcp/idle_timeout") != 1 {
			t.Fatalf("drops %d", m.drops())
		}
	})
}

func TestReadDeadline(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Unix(1000, 0)
	start := now.Add(-3 * time.Second)
	if d, why := readDeadline(cfg, now, start, true); !d.Equal(start.Add(cfg.MessageTimeout)) || why != DropSlow {
		t.Fatalf("pending: %v %v", d, why)
	}
	if d, why := readDeadline(cfg, now, time.Time{}, false); !d.Equal(now.Add(cfg.IdleTimeout)) || why != DropIdle {
		t.Fatalf("idle: %v %v", d, why)
	}
}

func TestListenerLimits(t *testing.T) {
	g, _, m := tcpGate(t, func(c *Config) { c.MaxConns, c.MaxConnsPerIP = 4, 2 })
	ml := newMemListener()
	l := g.Listener(ml)
	var held []*served
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		ml.dial(ip)
		held = append(held, accept(t, l))
	}
	closedAtOnce := func(c net.Conn) {
		t.Helper()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("over-limit connection not closed: %v", err)
		}
	}
	// A third from 192.0.2.1 is closed at once; one from 192.0.2.3 fills
	// the node; the next from 192.0.2.4 is closed at once.
	d := ml.dial("192.0.2.1")
	ml.dial("192.0.2.3")
	held = append(held, accept(t, l))
	closedAtOnce(d)
	f := ml.dial("192.0.2.4")
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	closedAtOnce(f)
	if m.drop("tcp/conn_limit_ip") != 1 || m.drop("tcp/conn_limit") != 1 || m.open() != 4 {
		t.Fatalf("drops %d per IP, %d total, open %d", m.drop("tcp/conn_limit_ip"), m.drop("tcp/conn_limit"), m.open())
	}
	// Once one closes, the next gets in.
	held[2].conn.Close()
	ml.dial("192.0.2.4")
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after one closed")
	}
	if n := l.(*listener).Conns(); n != 3 {
		t.Fatalf("conns %d, want 3", n)
	}
}

func TestAcceptRetriesTransientErrors(t *testing.T) {
	g, _, _ := tcpGate(t, nil)
	ml := newMemListener()
	l := g.Listener(ml)
	ml.errs <- &os.SyscallError{Syscall: "accept4", Err: syscall.EMFILE}
	ml.dial("192.0.2.1")
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("EMFILE ended Accept: %v", err)
	}
	c.Close()
	ml.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed listener: %v", err)
	}
}

func TestConnWriteTimeout(t *testing.T) {
	g, _, m := tcpGate(t, func(c *Config) { c.WriteTimeout = 50 * time.Millisecond })
	ml := newMemListener()
	ml.dial("192.0.2.7") // the peer never reads
	s := accept(t, g.Listener(ml))
	_, err := s.conn.Write([]byte(strings.Repeat("x", 100)))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write: %v", err)
	}
	if m.drop("tcp/write_timeout") != 1 || m.open() != 0 {
		t.Fatalf("drops %d, open %d", m.drops(), m.open())
	}
}
