package tcp

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeout reads TCP_USER_TIMEOUT off a connection.
func userTimeout(t *testing.T, nc net.Conn) time.Duration {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ms int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		ms, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return time.Duration(ms) * time.Millisecond
}

// After a partition of more than a few seconds, a pooled connection to a
// peer on the other side holds unacknowledged data and its retransmission
// timer has backed off (tens of seconds, up to 2 minutes); calls on it time
// out long after the network healed, so the two rings cannot merge (the
// bench/partition run: a 60 s cut did not merge within 30 s, ss showed
// "rto:27136 backoff:7 unacked:1" on those connections). TCP_USER_TIMEOUT
// makes the kernel abort such a connection instead, on both ends: the
// dialing side's pool connection and the accepting side's.
func TestUserTimeoutOnBothEnds(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), func(c *Config) { c.UserTimeout = 3 * time.Second })
	cli := newTransport(t, keyA, nil, func(c *Config) { c.UserTimeout = 1500 * time.Millisecond })
	if err := cli.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv)); err != nil {
		t.Fatal(err)
	}
	cli.mu.Lock()
	out := cli.peers[srv.Addr()].conns[0].nc
	cli.mu.Unlock()
	if got := userTimeout(t, out); got != 1500*time.Millisecond {
		t.Errorf("dialed connection: TCP_USER_TIMEOUT %v, want 1.5s", got)
	}
	srv.mu.Lock()
	var in []net.Conn
	for nc := range srv.inbound {
		in = append(in, nc)
	}
	srv.mu.Unlock()
	if len(in) != 1 {
		t.Fatalf("%d inbound connections, want 1", len(in))
	}
	if got := userTimeout(t, in[0]); got != 3*time.Second {
		t.Errorf("accepted connection: TCP_USER_TIMEOUT %v, want 3s", got)
	}

	// 0 keeps the system default (0: none).
	cli0 := newTransport(t, keyA, nil, func(c *Config) { c.UserTimeout = 0 })
	if err := cli0.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv)); err != nil {
		t.Fatal(err)
	}
	cli0.mu.Lock()
	out0 := cli0.peers[srv.Addr()].conns[0].nc
	cli0.mu.Unlock()
	if got := userTimeout(t, out0); got != 0 {
		t.Errorf("UserTimeout 0: TCP_USER_TIMEOUT %v, want the default 0", got)
	}
}
