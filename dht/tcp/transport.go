package tcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht"
)

// First byte of every TCP connection to the transport's port: it tells a
// DHT RPC connection from a memberlist stream.
const (
	prefixDHT        byte = 'D'
	prefixMemberlist byte = 'M'
)

// bindAttempts is how many free TCP ports New tries when BindAddr has port
// 0 and the same UDP port turns out to be taken.
const bindAttempts = 10

// Transport is the TCP implementation of dht.Transport, plus the server
// side that answers peers through a dht.Handler, plus a memberlist
// transport on the same port. Create it with New; all methods are safe for
// concurrent use.
type Transport struct {
	cfg  Config
	ring atomic.Pointer[keyring] // replaced, under mu, by SetKeys
	log  *zap.Logger
	rand io.Reader // nonce source

	tcp  *net.TCPListener
	udp  *net.UDPConn
	addr string // advertised "ip:port"
	ip   net.IP // advertised IP
	port int    // advertised port

	handler atomic.Pointer[dht.Handler] // nil until Serve
	ml      *memberlistTransport
	stats   counters

	ctx    context.Context // canceled by Close; parent of handler contexts
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	peers  map[string]*peerConns // outgoing connections by peer address
	// inbound holds accepted connections not handed to memberlist, with
	// the cluster key that authenticated each (nil until it has).
	inbound map[net.Conn][]byte
	wg      sync.WaitGroup // every goroutine the transport started
}

var _ dht.Transport = (*Transport)(nil)

// New binds cfg.BindAddr on TCP and UDP and starts accepting connections.
// keys are the cluster secrets (see ValidateKeys), copied: keys[0], the
// primary, is the one this node prefers; a peer holding any of them is
// accepted. DHT requests are answered with dht.ErrStopped until Serve is
// called. logger may be nil.
func New(cfg Config, keys [][]byte, logger *zap.Logger) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ring, err := newKeyring(keys)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	tcpLn, udpConn, err := listen(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	ip, port, err := advertise(cfg.AdvertiseAddr, tcpLn.Addr().(*net.TCPAddr))
	if err != nil {
		_ = tcpLn.Close()
		_ = udpConn.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:     cfg,
		log:     logger.Named("dht-tcp"),
		rand:    rand.Reader,
		tcp:     tcpLn,
		udp:     udpConn,
		addr:    net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		ip:      ip,
		port:    port,
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[string]*peerConns),
		inbound: make(map[net.Conn][]byte),
	}
	t.ring.Store(ring)
	t.ml = newMemberlistTransport(t)
	t.goroutine(t.acceptLoop)
	t.goroutine(t.udpLoop)
	t.goroutine(t.janitor)
	t.log.Info("listening", zap.String("bind", tcpLn.Addr().String()), zap.String("advertise", t.addr),
		zap.Strings("cluster_key_ids", ring.ids))
	return t, nil
}

// listen binds TCP and UDP on the same port. With port 0 it takes the port
// the kernel picked for TCP and retries with a new one if that UDP port is
// taken.
func listen(bindAddr string) (*net.TCPListener, *net.UDPConn, error) {
	host, port, err := splitHostPort(bindAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("dht/tcp: bind %q: %w", bindAddr, err)
	}
	var lastErr error
	for range bindAttempts {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, nil, fmt.Errorf("dht/tcp: listen tcp %s: %w", bindAddr, err)
		}
		tcpLn := ln.(*net.TCPListener)
		got := tcpLn.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(got)))
		if err == nil {
			udpConn := pc.(*net.UDPConn)
			setUDPReadBuffer(udpConn)
			return tcpLn, udpConn, nil
		}
		_ = tcpLn.Close()
		lastErr = fmt.Errorf("dht/tcp: listen udp on tcp port %d: %w", got, err)
		if port != 0 {
			break
		}
	}
	return nil, nil, lastErr
}

// setUDPReadBuffer asks for a large receive buffer so gossip bursts are not
// dropped, backing off until the kernel accepts the size (as memberlist's
// own transport does).
func setUDPReadBuffer(c *net.UDPConn) {
	for size := 2 << 20; size > 0; size /= 2 {
		if c.SetReadBuffer(size) == nil {
			return
		}
	}
}

// advertise picks the address peers use to reach this node.
func advertise(advertiseAddr string, bound *net.TCPAddr) (net.IP, int, error) {
	port := bound.Port
	if advertiseAddr != "" {
		host, p, err := splitHostPort(advertiseAddr)
		if err != nil {
			return nil, 0, fmt.Errorf("dht/tcp: advertise address: %w", err)
		}
		if p != 0 {
			port = p
		}
		return normalizeIP(net.ParseIP(host)), port, nil
	}
	if bound.IP != nil && !bound.IP.IsUnspecified() {
		return normalizeIP(bound.IP), port, nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return nil, 0, fmt.Errorf("dht/tcp: bound to all interfaces and no single private IP found (%v): set AdvertiseAddr", err)
	}
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return nil, 0, fmt.Errorf("dht/tcp: private IP %q does not parse: set AdvertiseAddr", ip)
	}
	return normalizeIP(parsed), port, nil
}

func normalizeIP(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// Addr returns the advertised "ip:port": the address to put in dht.Peer.Addr
// and to give memberlist peers to join.
func (t *Transport) Addr() string { return t.addr }

// Serve starts answering DHT RPCs with h. It does not block; calling it
// again replaces the handler, and Serve(nil) goes back to answering
// dht.ErrStopped (for example while leaving the ring).
func (t *Transport) Serve(h dht.Handler) {
	if h == nil {
		t.handler.Store(nil)
		return
	}
	t.handler.Store(&h)
}

// Close stops listening, closes every connection (calls in flight return
// dht.ErrStopped), cancels the contexts of running handlers and waits
// until every goroutine the transport started has returned. A handler that
// ignores its context delays Close. Close is idempotent. A memberlist
// using the transport should be shut down first.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	t.cancel()
	var outgoing []*clientConn
	for _, pc := range t.peers {
		outgoing = append(outgoing, pc.conns...)
	}
	inbound := make([]net.Conn, 0, len(t.inbound))
	for nc := range t.inbound {
		inbound = append(inbound, nc)
	}
	t.mu.Unlock()

	err := errors.Join(t.tcp.Close(), t.udp.Close())
	for _, c := range outgoing {
		c.fail(errClosed)
	}
	for _, nc := range inbound {
		_ = nc.Close()
	}
	t.wg.Wait()
	t.log.Info("closed", zap.String("addr", t.addr))
	if err != nil {
		return fmt.Errorf("dht/tcp: close: %w", err)
	}
	return nil
}

// goroutine runs f on a goroutine Close waits for. It reports false, and
// does not run f, once the transport is closed.
func (t *Transport) goroutine(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// acceptLoop hands every accepted connection to its own goroutine.
func (t *Transport) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := t.tcp.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			// Out of descriptors or similar: back off, do not spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accept failed", zap.Error(err), zap.Duration("retry_in", delay))
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			if rc, err := tc.SyscallConn(); err == nil {
				if err := setUserTimeout(rc, t.cfg.UserTimeout); err != nil {
					t.log.Warn("setting TCP_USER_TIMEOUT", zap.Error(err))
				}
			}
		}
		t.startInbound(nc)
	}
}

// startInbound tracks nc so Close can close it and serves it on a new
// goroutine.
func (t *Transport) startInbound(nc net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = nc.Close()
		return
	}
	t.inbound[nc] = nil
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.handleInbound(nc)
	}()
}

func (t *Transport) untrack(nc net.Conn) {
	t.mu.Lock()
	delete(t.inbound, nc)
	t.mu.Unlock()
}

// handleInbound reads the prefix byte and routes the connection.
func (t *Transport) handleInbound(nc net.Conn) {
	handedOff := false
	defer func() {
		if !handedOff {
			t.untrack(nc)
			_ = nc.Close()
		}
	}()
	_ = nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	var prefix [1]byte
	if _, err := io.ReadFull(nc, prefix[:]); err != nil {
		return
	}
	switch prefix[0] {
	case prefixDHT:
		t.serveConn(nc)
	case prefixMemberlist:
		_ = nc.SetDeadline(time.Time{})
		t.untrack(nc)
		handedOff = t.ml.deliverStream(nc)
	default:
		t.stats.badPrefix.Add(1)
		t.log.Debug("unknown connection prefix", zap.Uint8("byte", prefix[0]), zap.Stringer("remote", nc.RemoteAddr()))
	}
}
