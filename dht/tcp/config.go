package tcp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config holds the transport's tunables. Dependencies (the cluster keys,
// the logger) are arguments of New, not fields here.
type Config struct {
	// BindAddr is the "host:port" the transport listens on, with TCP (DHT
	// RPC and memberlist streams) and UDP (memberlist packets) on the same
	// port. An empty host listens on all interfaces; port 0 picks a free
	// port that is free for both protocols.
	BindAddr string

	// AdvertiseAddr is the "ip:port" peers use to reach this node; it is
	// what Addr returns and what memberlist gossips. Port 0 means the bound
	// port. Empty: the bound IP, or, when bound to all interfaces, the one
	// private IP of this host.
	AdvertiseAddr string

	// DialTimeout bounds establishing the TCP connection to a peer.
	DialTimeout time.Duration

	// HandshakeTimeout bounds the authentication handshake, in both roles,
	// and the wait for the first byte of an accepted connection.
	HandshakeTimeout time.Duration

	// WriteTimeout bounds writing one frame when the call's context has no
	// earlier deadline; a peer that stops reading for this long loses the
	// connection.
	WriteTimeout time.Duration

	// MaxMessageSize is the largest encoded request or response, in bytes,
	// in either direction. Larger outgoing messages fail locally; a larger
	// incoming frame closes the connection before anything is allocated
	// for it. It must be the same on every node.
	MaxMessageSize int

	// ConnsPerPeer is how many multiplexed connections are kept to one
	// peer. One suffices for concurrency (calls carry request IDs and never
	// wait for each other); more spread large transfers.
	ConnsPerPeer int

	// IdleTimeout closes an outgoing connection that had no call in flight
	// for this long.
	IdleTimeout time.Duration

	// MaxInflight bounds the requests one incoming connection may have in
	// its handler at once; further requests wait in TCP (back-pressure).
	MaxInflight int

	// UserTimeout is how long data sent on a connection, in either role,
	// may stay unacknowledged before the kernel aborts the connection
	// (TCP_USER_TIMEOUT, Linux only; 0 keeps the system's, about 15
	// minutes of retransmissions). Without it a connection to a peer cut
	// off by a network partition stays in the pool with its retransmission
	// timer backing off towards 2 minutes, and every call on it times out
	// until that timer next fires, long after the network healed; with it
	// the connection ends and the next call dials afresh.
	UserTimeout time.Duration
}

// DefaultConfig returns production defaults, listening on port 7946 of
// every interface.
func DefaultConfig() Config {
	return Config{
		BindAddr:         ":7946",
		DialTimeout:      2 * time.Second,
		HandshakeTimeout: 2 * time.Second,
		WriteTimeout:     10 * time.Second,
		MaxMessageSize:   4 << 20,
		ConnsPerPeer:     2,
		IdleTimeout:      90 * time.Second,
		MaxInflight:      64,
		UserTimeout:      5 * time.Second,
	}
}

// LocalConfig returns DefaultConfig bound to a free port on 127.0.0.1
// with short timeouts, for tests.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1:0"
	c.DialTimeout = time.Second
	c.HandshakeTimeout = time.Second
	c.WriteTimeout = 2 * time.Second
	c.IdleTimeout = 10 * time.Second
	return c
}

// Limits on MaxMessageSize: room for a useful message, and frame lengths
// that fit the 32-bit length prefix with room to spare.
const (
	minMessageSize = 1 << 10
	maxMessageSize = 1 << 30
)

// Validate checks every field and the fields against each other.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("dht/tcp: config: "+format, args...))
	}
	if _, _, err := splitHostPort(c.BindAddr); err != nil {
		bad("BindAddr: %v", err)
	}
	if c.AdvertiseAddr != "" {
		host, _, err := splitHostPort(c.AdvertiseAddr)
		switch {
		case err != nil:
			bad("AdvertiseAddr: %v", err)
		case net.ParseIP(host) == nil:
			bad("AdvertiseAddr %q: host must be an IP address", c.AdvertiseAddr)
		case net.ParseIP(host).IsUnspecified():
			bad("AdvertiseAddr %q: unspecified IP cannot be reached", c.AdvertiseAddr)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"HandshakeTimeout", c.HandshakeTimeout},
		{"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, got %v", d.name, d.v)
		}
	}
	if c.MaxMessageSize < minMessageSize || c.MaxMessageSize > maxMessageSize {
		bad("MaxMessageSize must be in [%d, %d], got %d", minMessageSize, maxMessageSize, c.MaxMessageSize)
	}
	if c.ConnsPerPeer < 1 || c.ConnsPerPeer > 64 {
		bad("ConnsPerPeer must be in [1, 64], got %d", c.ConnsPerPeer)
	}
	if c.UserTimeout < 0 {
		bad("UserTimeout must not be negative, got %v", c.UserTimeout)
	}
	if c.MaxInflight < 1 {
		bad("MaxInflight must be at least 1, got %d", c.MaxInflight)
	}
	if c.IdleTimeout > 0 && c.IdleTimeout < c.HandshakeTimeout {
		bad("IdleTimeout (%v) shorter than HandshakeTimeout (%v) would close connections as soon as they are set up", c.IdleTimeout, c.HandshakeTimeout)
	}
	return errors.Join(errs...)
}

// splitHostPort splits "host:port" and checks the port is a number in
// [0, 65535].
func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q in %q", portStr, addr)
	}
	return host, int(port), nil
}
